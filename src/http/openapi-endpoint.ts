/**
 * GET /v1.0/openapi.json: the OpenAPI document of the REST paths, as `npm run generate` wrote
 * it to gen/openapi.json from the protos (src/contract/openapi.ts). Public: it describes the
 * API, not anyone's data. Read once, on the first request.
 */
import { readFileSync } from "node:fs";

export const openApiPath = "/v1.0/openapi.json";

interface Res {
  writeHead(status: number, headers: Record<string, string>): unknown;
  end(chunk: string): unknown;
}

export function createOpenApiEndpoint(
  file: URL | string,
): (req: { method?: string | undefined; url?: string | undefined }, res: Res) => boolean {
  let text: string | undefined;
  return (req, res) => {
    if ((req.method !== "GET" && req.method !== "HEAD") || (req.url ?? "/").split("?")[0] !== openApiPath) return false;
    text ??= readFileSync(file, "utf8");
    // Clients and tools that generate code fetch it again after a deploy: never cached stale.
    res.writeHead(200, { "content-type": "application/json", "cache-control": "no-cache" });
    res.end(req.method === "HEAD" ? "" : text);
    return true;
  };
}
