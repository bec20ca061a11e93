/**
 * The web console: the files of web/dist served at / (index.html for the root and for any
 * path without a file extension, so the console's own routes work on reload).
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

interface Res {
  writeHead(status: number, headers: Record<string, string>): unknown;
  end(chunk: string): unknown;
}

/** Serves GET/HEAD requests for files under `root`; false for other requests or when the root is missing. */
export function createStaticFiles(root: string): (req: { method?: string | undefined; url?: string | undefined }, res: Res & NodeJS.WritableStream) => boolean {
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
      "content-type": types[extname(file)] ?? "application/octet-stream",
      // Built assets carry a content hash in their names; index.html must always be fresh.
      "cache-control": file.endsWith("index.html") ? "no-cache" : "public, max-age=31536000, immutable",
    });
    if (req.method === "HEAD") res.end("");
    else createReadStream(file).pipe(res);
    return true;
  };
}
