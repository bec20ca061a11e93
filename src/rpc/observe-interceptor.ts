import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { randomUUID } from "node:crypto";
import { codeName } from "../http/http-status.js";
import type { Logger } from "../operator/logger.js";
import type { Metrics } from "../operator/metrics.js";

/**
 * One log line and the metrics per RPC: method, code, duration and a request id (taken from
 * x-request-id when the caller sends one, and echoed back). Streams count as open until they end.
 */
export function observeInterceptor(metrics: Metrics, logger: Logger): Interceptor {
  return (next) => async (req) => {
    const method = `${req.service.typeName}/${req.method.name}`;
    const requestId = req.header.get("x-request-id")?.slice(0, 128) ?? randomUUID();
    const started = performance.now();
    const finish = (error: unknown) => {
      const code = error === undefined ? "ok" : codeName(ConnectError.from(error).code);
      const seconds = (performance.now() - started) / 1000;
      metrics.requests.inc({ method, code });
      const line = { method, code, duration_ms: Math.round(seconds * 10_000) / 10, request_id: requestId };
      if (error !== undefined && ConnectError.from(error).code === Code.Internal) logger.error(line, "rpc");
      else logger.info(line, "rpc");
      return seconds;
    };
    try {
      const res = await next(req);
      res.header.set("x-request-id", requestId);
      if (!res.stream) {
        metrics.duration.observe({ method }, finish(undefined));
        return res;
      }
      metrics.openStreams.inc({ method });
      const messages = res.message;
      async function* observed() {
        let failure: unknown;
        try {
          yield* messages;
        } catch (error) {
          failure = error;
          throw error;
        } finally {
          metrics.openStreams.dec({ method });
          finish(failure);
        }
      }
      return { ...res, message: observed() };
    } catch (error) {
      finish(error);
      throw error;
    }
  };
}
