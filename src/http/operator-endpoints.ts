/**
 * Plain-HTTP endpoints for orchestrators and Prometheus. /healthz and /readyz answer on the
 * public port (load balancers probe it) and on the operator listener; /metrics only on the
 * operator listener, which binds to loopback by default.
 */
import http from "node:http";
import type { Metrics } from "../operator/metrics.js";
import { checkReadiness, type ReadinessChecks } from "../operator/readiness.js";

interface Res {
  writeHead(status: number, headers: Record<string, string>): unknown;
  end(chunk: string): unknown;
}

type Endpoints = (req: { method?: string | undefined; url?: string | undefined }, res: Res) => boolean;

function reply(res: Res, status: number, type: string, body: string): void {
  res.writeHead(status, { "content-type": type, "cache-control": "no-store" });
  res.end(body);
}

function pathOf(req: { method?: string | undefined; url?: string | undefined }): string | undefined {
  if (req.method !== "GET" && req.method !== "HEAD") return undefined;
  return (req.url ?? "/").split("?")[0];
}

/**
 * Answers /healthz and /readyz, and /metrics with 404 (the console's routes would otherwise
 * answer it with index.html); false for any other request.
 */
export function createHealthEndpoints(checks: ReadinessChecks): Endpoints {
  return (req, res) => {
    const path = pathOf(req);
    if (path === "/metrics" || path?.startsWith("/metrics/")) {
      reply(res, 404, "text/plain", "not found: /metrics is served on the operator listener (TALKHUB_OPERATOR_PORT)\n");
      return true;
    }
    switch (path) {
      case "/healthz":
        reply(res, 200, "application/json", '{"status":"ok"}');
        return true;
      case "/readyz":
        void checkReadiness(checks).then((readiness) =>
          reply(res, readiness.ready ? 200 : 503, "application/json", JSON.stringify(readiness)),
        );
        return true;
      default:
        return false;
    }
  };
}

/** Answers /healthz, /readyz and /metrics; false for any other request. */
export function createOperatorEndpoints(checks: ReadinessChecks, metrics: Metrics): Endpoints {
  const health = createHealthEndpoints(checks);
  return (req, res) => {
    if (pathOf(req) !== "/metrics") return health(req, res);
    void metrics.registry.metrics().then(
      (text) => reply(res, 200, metrics.registry.contentType, text),
      () => reply(res, 500, "text/plain", "metrics failed\n"),
    );
    return true;
  };
}

export interface OperatorListener {
  readonly port: number;
  close(): Promise<void>;
}

/** A small HTTP/1.1 server for the operator endpoints; anything else is 404. */
export async function listenOperator(endpoints: Endpoints, options: { host: string; port: number }): Promise<OperatorListener> {
  const server = http.createServer((req, res) => {
    if (!endpoints(req, res)) reply(res, 404, "text/plain", "not found\n");
  });
  // Scrapes are small and quick: nothing needs a connection for long.
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.keepAliveTimeout = 65_000;
  server.on("clientError", (_error, socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === "object" && address !== null ? address.port : options.port;
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
