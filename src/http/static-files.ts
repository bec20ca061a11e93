/**
 * The web console: the files of web/dist served at / (index.html for the root and for any
 * path without a file extension, so the console's own routes work on reload), under a strict
 * Content-Security-Policy: the built console has no inline script or style and talks only to
 * its own origin, so an injected script has nowhere to run and nowhere to send a token.
 */
import { createReadStream, existsSync, statSync } from "node:fs";
import { extname, join, normalize, resolve } from "node:path";

const types: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json",
  ".map": "application/json",
  ".woff2": "font/woff2",
};

/** The console's policy; img-src allows data: for the inline empty favicon. */
export const consolePolicy = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  // The sign-in form is handled by script; without it, the token must not go into a URL.
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

/** Headers on every file of the console. */
export const consoleHeaders: Readonly<Record<string, string>> = {
  "content-security-policy": consolePolicy,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  // Older browsers that know no frame-ancestors.
  "x-frame-options": "DENY",
};

interface Res {
  writeHead(status: number, headers: Record<string, string>): unknown;
  end(chunk: string): unknown;
}

/** Serves GET/HEAD requests for files under `root`; false for other requests or when the root is missing. */
export function createStaticFiles(
  root: string,
): (req: { method?: string | undefined; url?: string | undefined }, res: Res & NodeJS.WritableStream) => boolean {
  const base = resolve(root);
  return (req, res) => {
    if ((req.method !== "GET" && req.method !== "HEAD") || !existsSync(join(base, "index.html"))) return false;
    let path: string;
    try {
      path = decodeURIComponent((req.url ?? "/").split("?")[0] ?? "/");
    } catch {
      return false;
    }
    if (path.startsWith("/v1.0/") || /^\/[a-z]+\.[a-z0-9.]+\//i.test(path)) return false;
    const wanted = extname(path) === "" ? "/index.html" : path;
    const file = normalize(join(base, wanted));
    if (!file.startsWith(base) || !existsSync(file) || !statSync(file).isFile()) return false;
    res.writeHead(200, {
      ...consoleHeaders,
      "content-type": types[extname(file)] ?? "application/octet-stream",
      // Built assets carry a content hash in their names; index.html must always be fresh.
      "cache-control": file.endsWith("index.html") ? "no-cache" : "public, max-age=31536000, immutable",
    });
    if (req.method === "HEAD") res.end("");
    else createReadStream(file).pipe(res);
    return true;
  };
}
