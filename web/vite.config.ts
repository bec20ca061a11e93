/**
 * Builds the web console into web/dist, which Talkhub serves at / (src/http/static-files.ts).
 * Run from the repository root: `npm run build:web`. `npm run dev:web` serves it with hot reload
 * and forwards the API to a Talkhub on :8080 (TALKHUB_URL to change it).
 */
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const webDir = fileURLToPath(new URL(".", import.meta.url));
const repoDir = fileURLToPath(new URL("..", import.meta.url));
const talkhub = process.env["TALKHUB_URL"] ?? "http://localhost:8080";

export default defineConfig({
  root: webDir,
  base: "/",
  publicDir: false,
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    // Every asset a file of its own: the console's Content-Security-Policy (static-files.ts)
    // allows no inline script or style, and data: only for images.
    assetsInlineLimit: 0,
  },
  server: {
    // The generated code lives in ../gen and its runtime in ../node_modules.
    fs: { allow: [repoDir] },
    // Connect procedures are POSTed to /<package>.<Service>/<Method>.
    proxy: { "^/talk\\.v1\\.": { target: talkhub, changeOrigin: true } },
  },
});
