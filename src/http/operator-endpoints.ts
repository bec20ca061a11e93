/** Plain-HTTP endpoints for orchestrators and Prometheus: /healthz, /readyz, /metrics. */
import type { Metrics } from "../operator/metrics.js";
import { checkReadiness, type ReadinessChecks } from "../operator/readiness.js";

interface Res {
  writeHead(status: number, headers: Record<string, string>): unknown;
  end(chunk: string): unknown;
}

/** Answers the operator paths; false for any other request. */
export function createOperatorEndpoints(checks: ReadinessChecks, metrics: Metrics): (req: { method?: string | undefined; url?: string | undefined }, res: Res) => boolean {
  const reply = (res: Res, status: number, type: string, body: string) => {
    res.writeHead(status, { "content-type": type, "cache-control": "no-store" });
    res.end(body);
  };
  return (req, res) => {
    if (req.method !== "GET" && req.method !== "HEAD") return false;
    const path = (req.url ?? "/").split("?")[0];
    switch (path) {
      case "/healthz":
        reply(res, 200, "application/json", '{"status":"ok"}');
        return true;
      case "/readyz":
        void checkReadiness(checks).then((readiness) =>
          reply(res, readiness.ready ? 200 : 503, "application/json", JSON.stringify(readiness)),
        );
        return true;
      case "/metrics":
        void metrics.registry.metrics().then(
          (text) => reply(res, 200, metrics.registry.contentType, text),
          () => reply(res, 500, "text/plain", "metrics failed\n"),
        );
        return true;
      default:
        return false;
    }
  };
}
