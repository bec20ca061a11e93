import { cors } from "@connectrpc/connect";

interface Req {
  readonly method?: string | undefined;
  readonly headers: Record<string, string | string[] | undefined>;
}
interface Res {
  setHeader(name: string, value: string): unknown;
  writeHead(status: number): unknown;
  end(chunk: string): unknown;
}

/**
 * CORS for browsers (Connect-Web, gRPC-Web, REST): the allowed origins are configured ("*" for
 * any). Answers preflight requests itself (returns true) and adds the headers to the others.
 */
export function createCors(origins: readonly string[]): (req: Req, res: Res) => boolean {
  const any = origins.includes("*");
  const allowMethods = [...new Set([...cors.allowedMethods, "GET", "POST", "PUT", "PATCH", "DELETE"])].join(", ");
  const allowHeaders = [...cors.allowedHeaders, "Authorization", "X-Request-Id"].join(", ");
  const exposeHeaders = [...cors.exposedHeaders, "X-Request-Id", "Retry-After"].join(", ");
  return (req, res) => {
    const origin = req.headers["origin"];
    if (typeof origin !== "string" || !(any || origins.includes(origin))) return false;
    res.setHeader("access-control-allow-origin", any ? "*" : origin);
    if (!any) res.setHeader("vary", "Origin");
    res.setHeader("access-control-expose-headers", exposeHeaders);
    if (req.method !== "OPTIONS" || req.headers["access-control-request-method"] === undefined) return false;
    res.setHeader("access-control-allow-methods", allowMethods);
    res.setHeader("access-control-allow-headers", allowHeaders);
    res.setHeader("access-control-max-age", "7200");
    res.writeHead(204);
    res.end("");
    return true;
  };
}
