/**
 * `npm start` (and `npm run token`, `npm run migrate`): runs the compiled service, dist/main.js
 * (or dist/token.js with `token`, dist/migrate.js with `migrate`), in this process, after
 * building whatever is missing or older than its sources, so `npm install && npm start` works
 * on a fresh clone. Without the devDependencies (a production install) nothing can be built:
 * an existing dist/ runs as it is, a missing one is an error.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** The commands beside the service: `npm run token` and `npm run migrate`. */
const commands = ["token", "migrate"];
const entry = commands.includes(process.argv[2]) ? process.argv[2] : "main";
if (entry !== "main") process.argv.splice(2, 1);
const target = new URL(`../dist/${entry}.js`, import.meta.url);

let buildTools = true;
try {
  import.meta.resolve("esbuild");
} catch {
  buildTools = false;
}

if (buildTools) {
  const { buildAll } = await import("./build.mjs");
  const started = performance.now();
  // stderr: `npm run -s token` prints the token alone on stdout.
  const built = await buildAll({ ifStale: true, serverOnly: entry !== "main", log: (line) => console.error(`${line}...`) });
  if (built.length > 0) console.error(`built ${built.join(" and ")} in ${Math.round(performance.now() - started)} ms`);
} else if (!existsSync(target)) {
  console.error(`${fileURLToPath(target)} is missing and cannot be built without the devDependencies: run npm run build first`);
  process.exit(1);
}

await import(target.href);
