/**
 * gRPC, gRPC-Web and Connect on Node's HTTP/1.1 and HTTP/2 requests: unary and server-streaming
 * gRPC on a direct path (grpc-direct.ts), the rest through connect-node's universal handlers,
 * with two fixes at the edge.
 *  - A request body that does not parse as protobuf is the client's fault: connect reports it
 *    as INTERNAL, Talkhub answers INVALID_ARGUMENT (HTTP 400 on Connect).
 *  - A response sent before the request body was read (a refused oversized message) resets the
 *    HTTP/2 stream, so the rest of the body is not buffered and the connection stays usable.
 */
import { Code, createConnectRouter, createServiceImplSpec, type ConnectRouter, type ConnectRouterOptions, type ServiceImplSpec } from "@connectrpc/connect";
import { compressionBrotli, compressionGzip, universalRequestFromNodeRequest, universalResponseToNodeResponse } from "@connectrpc/connect-node";
import { createAsyncIterable, readAllBytes, type UniversalServerResponse } from "@connectrpc/connect/protocol";
import http2 from "node:http2";
import { createGrpcDirect } from "./grpc-direct.js";
import type { RequestHandler } from "./listener.js";

const parseFailure = /^(\[internal\] )?parse binary:/;

/** Rewrites connect's INTERNAL "parse binary" answers as INVALID_ARGUMENT, per protocol. */
async function clientFault(res: UniversalServerResponse): Promise<UniversalServerResponse> {
  // gRPC and gRPC-Web errors before any message: the status is in the (trailers-only) headers.
  for (const headers of [res.header, res.trailer]) {
    if (headers?.get("grpc-status") === String(Code.Internal) && parseFailure.test(decodeURIComponent(headers.get("grpc-message") ?? ""))) {
      headers.set("grpc-status", String(Code.InvalidArgument));
    }
  }
  // Connect unary: a small JSON error body with the HTTP status of its code.
  if (res.status === 500 && res.body !== undefined) {
    const bytes = await readAllBytes(res.body, 64 * 1024);
    try {
      const error = JSON.parse(new TextDecoder().decode(bytes)) as { code?: string; message?: string };
      if (error.code === "internal" && parseFailure.test(error.message ?? "")) {
        const body = new TextEncoder().encode(JSON.stringify({ ...error, code: "invalid_argument" }));
        res.header?.set("content-length", String(body.byteLength));
        return { ...res, status: 400, body: createAsyncIterable([body]) };
      }
    } catch {
      // Not JSON: pass it on as it was.
    }
    return { ...res, body: createAsyncIterable([bytes]) };
  }
  return res;
}

/** Routes registered on a connect router, and the service implementations they were given. */
function recordingRouter(router: ConnectRouter): { router: ConnectRouter; services: ServiceImplSpec[] } {
  const services: ServiceImplSpec[] = [];
  const recording: ConnectRouter = {
    get handlers() {
      return router.handlers;
    },
    service(service, implementation, options) {
      services.push(createServiceImplSpec(service, implementation));
      router.service(service, implementation, options);
      return recording;
    },
    rpc(method, implementation, options) {
      router.rpc(method, implementation, options);
      return recording;
    },
  };
  return { router: recording, services };
}

export function createRpcAdapter(routes: (router: ConnectRouter) => void, options: ConnectRouterOptions): RequestHandler {
  const recorded = recordingRouter(createConnectRouter({ acceptCompression: [compressionGzip, compressionBrotli], ...options }));
  routes(recorded.router);
  const handlers = new Map(recorded.router.handlers.map((handler) => [handler.requestPath, handler]));
  const grpcDirect = createGrpcDirect({
    services: recorded.services,
    interceptors: options.interceptors ?? [],
    readMaxBytes: options.readMaxBytes ?? 0xffffffff,
  });
  return (req, res) => {
    if (req instanceof http2.Http2ServerRequest && grpcDirect(req, res as http2.Http2ServerResponse)) return;
    const handler = handlers.get(req.url?.split("?", 2)[0] ?? "");
    if (handler === undefined) {
      res.writeHead(404);
      res.end();
      return;
    }
    if (req instanceof http2.Http2ServerRequest) {
      res.once("finish", () => {
        if (!req.complete && !req.stream.destroyed) req.stream.close(http2.constants.NGHTTP2_NO_ERROR);
      });
    }
    handler(universalRequestFromNodeRequest(req, res, undefined, undefined))
      .then(clientFault)
      .then((uRes) => universalResponseToNodeResponse(uRes, res))
      .catch(() => {
        // The client went away mid-response; there is no one left to answer.
        if (!res.headersSent) res.writeHead(499);
        res.end();
      });
  };
}
