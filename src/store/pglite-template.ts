/**
 * The embedded database's starting point: `npm run build` runs initdb once and saves the result
 * in dist/ (initdb inside PGlite costs seconds of CPU, several times what a start costs), so a new
 * data dir starts as a copy of it. Without a build (tsx from src/) PGlite runs initdb itself.
 */
import { readFileSync } from "node:fs";

/** Where the build writes the template (scripts/build.mjs): a gzipped tar of an initdb'd pgdata. */
export const pgliteTemplateUrl = new URL("../../dist/pgdata-template.tar.gz", import.meta.url);

/** The template as PGlite's `loadDataDir` takes it, or undefined when there is none. */
export function readPgliteTemplate(url: URL = pgliteTemplateUrl): Blob | undefined {
  try {
    return new Blob([readFileSync(url)]);
  } catch {
    return undefined;
  }
}
