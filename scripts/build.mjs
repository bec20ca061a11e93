/**
 * `npm run build`: bundles the service into dist/ with esbuild (dist/main.js, dist/token.js,
 * dist/migrate.js, source maps beside them), saves an initdb'd embedded database as the template of new data dirs
 * (dist/pgdata-template) and builds the web console into web/dist with Vite.
 * `node scripts/build.mjs --if-stale` builds only what is older than its sources (npm start).
 *
 * Plain JavaScript, so that the staleness check costs a few milliseconds and needs no compiler;
 * esbuild and Vite are devDependencies and are loaded only when something is built.
 */
import { mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const distDir = join(root, "dist");

/** What the service bundle is made of; the web console adds web/ (but not its own output). */
const serverInputs = ["src", "gen", "package.json", "scripts/build.mjs"];
const webInputs = ["web", "gen"];
const webOutput = join(root, "web", "dist", "index.html");
/** The embedded database's initdb'd template (src/store/pglite-template.ts), made by the installed PGlite. */
const templateOutput = join(distDir, "pgdata-template");
const templateInputs = ["package-lock.json", "scripts/build.mjs"];

/**
 * Entry points in dist/: each turns source maps on before its bundle loads (a module's map is
 * only read if they are on when it is loaded), so stack traces name src/ lines.
 */
const entries = { main: "src/main.ts", token: "src/cli/token.ts", migrate: "src/cli/migrate.ts" };

function newestMtime(path, skip) {
  let st;
  try {
    st = statSync(path);
  } catch {
    return 0;
  }
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs;
  for (const name of readdirSync(path)) {
    const child = join(path, name);
    if (name === "node_modules" || child === skip) continue;
    newest = Math.max(newest, newestMtime(child, skip));
  }
  return newest;
}

function mtime(path) {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return -1;
  }
}

/** True when dist/ is missing or older than any of its sources. */
export function serverStale() {
  const built = Math.min(...Object.keys(entries).map((name) => mtime(join(distDir, `bundle-${name}.js`))));
  return built < 0 || serverInputs.some((p) => newestMtime(join(root, p)) > built);
}

/** True when web/dist is missing or older than any file of web/ or gen/. */
export function webStale() {
  const built = mtime(webOutput);
  return built < 0 || webInputs.some((p) => newestMtime(join(root, p), join(root, "web", "dist")) > built);
}

/** True when the template is missing or older than the installed PGlite (package-lock.json). */
export function templateStale() {
  const built = mtime(join(templateOutput, "PG_VERSION"));
  return built < 0 || templateInputs.some((p) => newestMtime(join(root, p)) > built);
}

/**
 * Source files locate files beside them with `new URL(..., import.meta.url)` (gen/descriptors.binpb,
 * web/dist). In a bundle import.meta.url is the bundle's, so each file's is rewritten to the URL its
 * source file has relative to dist/: the same paths then work from src/ (tsx) and from dist/.
 */
const sourceUrlPlugin = {
  name: "source-import-meta-url",
  setup(build) {
    build.onLoad({ filter: /[\\/](src|gen)[\\/].*\.ts$/ }, async (args) => {
      const { readFile } = await import("node:fs/promises");
      const text = await readFile(args.path, "utf8");
      if (!text.includes("import.meta.url")) return { contents: text, loader: "ts" };
      const fromDist = relative(distDir, args.path).split("\\").join("/");
      return {
        contents: text.replaceAll("import.meta.url", `new URL(${JSON.stringify(fromDist)}, import.meta.url).href`),
        loader: "ts",
      };
    });
  },
};

/**
 * Bundles src/, gen/ and the packages they import into dist/: resolving and loading a few hundred
 * package modules one by one was about a quarter of a start's CPU time. PGlite stays external: it
 * loads its wasm and data files from beside its own module. CommonJS packages in the bundle get a
 * `require` (for Node's modules, and for the optional ones they try: pg-native, bufferutil).
 */
export async function buildServer() {
  const { build } = await import("esbuild");
  await build({
    absWorkingDir: root,
    entryPoints: Object.fromEntries(Object.entries(entries).map(([name, src]) => [`bundle-${name}`, src])),
    outdir: distDir,
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    external: ["@electric-sql/pglite"],
    banner: { js: 'import { createRequire as __createRequire } from "node:module"; const require = __createRequire(import.meta.url);' },
    sourcemap: true,
    // The maps name files relative to dist/ (../src/...); their text stays in the files.
    sourcesContent: false,
    logLevel: "warning",
    plugins: [sourceUrlPlugin],
  });
  for (const name of Object.keys(entries)) {
    writeFileSync(
      join(distDir, `${name}.js`),
      `// Generated by scripts/build.mjs.\nprocess.setSourceMapsEnabled(true);\nawait import("./bundle-${name}.js");\n`,
    );
  }
}

/** Runs PGlite's initdb once into dist/pgdata-template; a new data dir starts as a copy of it. */
export async function buildTemplate() {
  const { PGlite } = await import("@electric-sql/pglite");
  // Made under another name and renamed: a start never copies half a template.
  const making = `${templateOutput}.new`;
  rmSync(making, { recursive: true, force: true });
  mkdirSync(making, { recursive: true });
  const pglite = new PGlite(making);
  await pglite.waitReady;
  await pglite.close();
  rmSync(templateOutput, { recursive: true, force: true });
  renameSync(making, templateOutput);
}

/** Builds the web console into web/dist with the project's Vite config. */
export async function buildWeb() {
  const { build } = await import("vite");
  await build({ configFile: join(root, "web", "vite.config.ts"), logLevel: "warn" });
}

/**
 * Builds what is stale (everything unless `ifStale`); `serverOnly` skips the database template
 * and the console (the token and migrate commands need neither: a data dir made without the
 * template is initdb'd by PGlite); `log` hears each step before it starts.
 * Returns the names of what it built.
 */
export async function buildAll({ ifStale = false, serverOnly = false, log = () => {} } = {}) {
  const steps = [
    ["dist", serverStale, buildServer],
    ...(serverOnly
      ? []
      : [
          ["the database template", templateStale, buildTemplate],
          ["web/dist", webStale, buildWeb],
        ]),
  ];
  const built = [];
  for (const [name, stale, build] of steps) {
    if (ifStale && !stale()) continue;
    log(`building ${name}`);
    await build();
    built.push(name);
  }
  return built;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const started = performance.now();
  const built = await buildAll({ ifStale: process.argv.includes("--if-stale"), log: (line) => console.log(`${line}...`) });
  if (built.length > 0) console.log(`built ${built.join(" and ")} in ${Math.round(performance.now() - started)} ms`);
}
