/**
 * The embedded database's starting point: `npm run build` runs initdb once into
 * dist/pgdata-template (initdb inside PGlite costs seconds of CPU, several times what a start
 * costs), and a new data dir starts as a file copy of it. Without a build (tsx from src/) there
 * is no template and PGlite runs initdb itself.
 */
import { chmodSync, cpSync, existsSync, readdirSync, renameSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** Where the build writes the template (scripts/build.mjs): an initdb'd, closed pgdata. */
export const pgliteTemplateDir = fileURLToPath(new URL("../../dist/pgdata-template", import.meta.url));

/**
 * Copies the template to `pgdata` when `pgdata` is missing or empty and the template exists;
 * true when it did. The copy is made beside `pgdata` and renamed into place, so a start that
 * dies half-way leaves no half database behind.
 */
export function startFromTemplate(pgdata: string, template: string = pgliteTemplateDir): boolean {
  if (!existsSync(`${template}/PG_VERSION`)) return false;
  if (existsSync(pgdata) && readdirSync(pgdata).length > 0) return false;
  const copy = `${pgdata}.new-${process.pid}`;
  rmSync(copy, { recursive: true, force: true });
  cpSync(template, copy, { recursive: true });
  // The database holds every tenant's messages: the owner's only, as makePrivateDir makes it.
  chmodSync(copy, 0o700);
  if (existsSync(pgdata)) rmSync(pgdata, { recursive: true });
  renameSync(copy, pgdata);
  return true;
}
