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

/** A comma-separated list of header names (RFC 9110 tokens). */
const headerList = /^[\t ]*[!#$%&'*+.^_`|~0-9A-Za-z-]+([\t ]*,[\t ]*[!#$%&'*+.^_`|~0-9A-Za-z-]+)*[\t ]*$/;

/**
 * CORS for browsers (Connect-Web, gRPC-Web, REST): the allowed origins are configured ("*" for
 * any). Answers preflight requests itself (returns true), allowing the request headers it asks
 * for, and adds the headers to the others.
 */
export function createCors(origins: readonly string[]): (req: Req, res: Res) => boolean {
  const any = origins.includes("*");
  const allowMethods = [...new Set([...cors.allowedMethods, "GET", "POST", "PUT", "PATCH", "DELETE"])].join(", ");
  const allowHeaders = [...cors.allowedHeaders, "Authorization", "X-Request-Id", "Traceparent", "Tracestate"].join(", ");
  const exposeHeaders = [...cors.exposedHeaders, "X-Request-Id", "Retry-After"].join(", ");
  return (req, res) => {
    const origin = req.headers["origin"];
    if (typeof origin !== "string" || !(any || origins.includes(origin))) return false;
    res.setHeader("access-control-allow-origin", any ? "*" : origin);
    if (!any) res.setHeader("vary", "Origin");
    res.setHeader("access-control-expose-headers", exposeHeaders);
    if (req.method !== "OPTIONS" || req.headers["access-control-request-method"] === undefined) return false;
    res.setHeader("access-control-allow-methods", allowMethods);
    // The headers the browser asks for are allowed as asked (tracing headers, a client's own
    // x-* headers): no fixed list can know them all. Only a well-formed list is reflected.
    const requested = req.headers["access-control-request-headers"];
    const reflected = typeof requested === "string" && headerList.test(requested) ? requested : undefined;
    res.setHeader("access-control-allow-headers", reflected ?? allowHeaders);
    if (!any || reflected !== undefined)
      res.setHeader("vary", any ? "Access-Control-Request-Headers" : "Origin, Access-Control-Request-Headers");
    res.setHeader("access-control-max-age", "7200");
    res.writeHead(204);
    res.end("");
    return true;
  };
}
