import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { randomUUID } from "node:crypto";
import { LiveBody } from "../live/live-body.js";
import type { Logger } from "../operator/logger.js";
import type { Metrics } from "../operator/metrics.js";
import { codeName } from "./errors.js";

/** The trace id of a W3C traceparent header ("00-<trace id>-<parent id>-<flags>"), if it is one. */
export function traceIdOf(traceparent: string | null): string | undefined {
  const match = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/.exec(traceparent?.trim() ?? "");
  if (match === null) return undefined;
  const [, version, traceId, parentId] = match;
  // Version ff and all-zero ids are invalid (W3C Trace Context, 3.2).
  if (version === "ff" || /^0+$/.test(traceId ?? "") || /^0+$/.test(parentId ?? "")) return undefined;
  if (version === "00" && match[5] !== undefined) return undefined;
  return traceId;
}

/** The error with the request id in its metadata: headers on Connect, trailers on gRPC. */
function withRequestId(error: unknown, requestId: string): ConnectError {
  const connectError = ConnectError.from(error);
  connectError.metadata.set("x-request-id", requestId);
  return connectError;
}

/**
 * One log line and the metrics per RPC: method, code, duration, a request id (taken from
 * x-request-id when the caller sends one, and echoed back on answers and errors alike) and the
 * trace id of a W3C traceparent. Streams count as open until they end.
 */
export function observeInterceptor(metrics: Metrics, logger: Logger): Interceptor {
  return (next) => async (req) => {
    const method = `${req.service.typeName}/${req.method.name}`;
    const requestId = req.header.get("x-request-id")?.slice(0, 128) ?? randomUUID();
    const traceId = traceIdOf(req.header.get("traceparent"));
    const started = performance.now();
    const finish = (error: unknown) => {
      const code = error === undefined ? "ok" : codeName(ConnectError.from(error).code);
      const seconds = (performance.now() - started) / 1000;
      metrics.requests.inc({ method, code });
      const line = {
        method,
        code,
        duration_ms: Math.round(seconds * 10_000) / 10,
        request_id: requestId,
        ...(traceId === undefined ? {} : { trace_id: traceId }),
      };
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
      // A live body is counted and logged at its end, not wrapped around each message.
      if (messages instanceof LiveBody) {
        messages.onEnd((error) => {
          metrics.openStreams.dec({ method });
          finish(error);
          return error === undefined ? undefined : withRequestId(error, requestId);
        });
        return res;
      }
      async function* observed() {
        let failure: unknown;
        try {
          yield* messages;
        } catch (error) {
          failure = error;
          throw withRequestId(error, requestId);
        } finally {
          metrics.openStreams.dec({ method });
          finish(failure);
        }
      }
      return { ...res, message: observed() };
    } catch (error) {
      finish(error);
      throw withRequestId(error, requestId);
    }
  };
}
