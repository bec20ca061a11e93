/**
 * gRPC, gRPC-Web and Connect on Node's HTTP/1.1 and HTTP/2 requests: unary and server-streaming
 * gRPC on a direct path (grpc-direct.ts), the rest through connect-node's universal handlers,
 * with two fixes at the edge.
 *  - A request body that does not parse as protobuf is the client's fault: connect reports it
 *    as INTERNAL, Talkhub answers INVALID_ARGUMENT (HTTP 400 on Connect).
 *  - A response sent before the request body was read (a refused oversized message) resets the
 *    HTTP/2 stream, so the rest of the body is not buffered and the connection stays usable.
 *  - The caller is authenticated from the headers before connect reads the body (see
 *    bodyAfterAuthentication).
 *  - gRPC's grpc-message is encoded as the gRPC spec says (see grpc-message.ts).
 *  - gRPC-Web's text mode (base64) is served as the binary one (see grpc-web-text.ts).
 */
import { Code, createConnectRouter, type ConnectRouterOptions, type ServiceImplSpec } from "@connectrpc/connect";
import {
  compressionBrotli,
  compressionGzip,
  universalRequestFromNodeRequest,
  universalResponseToNodeResponse,
} from "@connectrpc/connect-node";
import { createAsyncIterable, readAllBytes, type UniversalServerRequest, type UniversalServerResponse } from "@connectrpc/connect/protocol";
import type { DescMethod } from "@bufbuild/protobuf";
import http2 from "node:http2";
import { routesOf } from "../rpc/index.js";
import { createGrpcDirect, type HeaderAuthentication } from "./grpc-direct.js";
import { respecGrpcMessage } from "./grpc-message.js";
import { withGrpcWebText } from "./grpc-web-text.js";
import { authenticated, type RequestHandler } from "./listener.js";

const parseFailure = /^(\[internal\] )?parse binary:/;

/** Rewrites connect's INTERNAL "parse binary" answers as INVALID_ARGUMENT, per protocol. */
async function clientFault(res: UniversalServerResponse): Promise<UniversalServerResponse> {
  // gRPC and gRPC-Web errors before any message: the status is in the (trailers-only) headers.
  for (const headers of [res.header, res.trailer]) {
    if (headers?.get("grpc-status") === String(Code.Internal) && parseFailure.test(decodeURIComponent(headers.get("grpc-message") ?? ""))) {
      headers.set("grpc-status", String(Code.InvalidArgument));
    }
  }
  // gRPC-Web: the status travels in a trailer frame in the body, the first frame when the
  // request message did not parse.
  if (res.header?.get("content-type")?.startsWith("application/grpc-web") === true && res.body !== undefined) {
    return { ...res, body: webTrailerFault(res.body) };
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

/**
 * A gRPC response with its grpc-message re-encoded as the spec says, in the headers (a
 * trailers-only answer) and the trailers. connect fills both while the body is read, so each is
 * re-encoded as the body is passed on: the headers go out after the first chunk, the trailers
 * after the last.
 */
function grpcMessageAsSpecified(res: UniversalServerResponse): UniversalServerResponse {
  const contentType = res.header?.get("content-type") ?? "";
  if (!contentType.startsWith("application/grpc") || contentType.startsWith("application/grpc-web")) return res;
  const { header, trailer, body } = res;
  respecGrpcMessage(header);
  respecGrpcMessage(trailer);
  if (body === undefined) return res;
  async function* respecced(from: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
    let first = true;
    for await (const chunk of from) {
      if (first) respecGrpcMessage(header);
      first = false;
      yield chunk;
    }
    respecGrpcMessage(header);
    respecGrpcMessage(trailer);
  }
  return { ...res, body: respecced(body) };
}

/** gRPC-Web's trailer frame flag: the frame holds the status as HTTP header lines. */
const trailerFlag = 0x80;

/** Passes a gRPC-Web body on, with a first-frame INTERNAL "parse binary" status made INVALID_ARGUMENT. */
async function* webTrailerFault(body: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  let first = true;
  for await (const chunk of body) {
    yield first && chunk[0] === trailerFlag ? clientFaultTrailer(chunk) : chunk;
    first = false;
  }
}

function clientFaultTrailer(frame: Uint8Array): Uint8Array {
  const length = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength).readUInt32BE(1);
  if (frame.byteLength !== 5 + length) return frame;
  const text = new TextDecoder().decode(frame.subarray(5));
  const status = /^grpc-status: *(\d+)\r$/m.exec(text)?.[1];
  const message = /^grpc-message: *(.*)\r$/m.exec(text)?.[1] ?? "";
  let decoded: string;
  try {
    decoded = decodeURIComponent(message);
  } catch {
    return frame;
  }
  if (status !== String(Code.Internal) || !parseFailure.test(decoded)) return frame;
  const lines = new TextEncoder().encode(text.replace(/^grpc-status: *\d+\r$/m, `grpc-status: ${Code.InvalidArgument}\r`));
  const rewritten = new Uint8Array(5 + lines.byteLength);
  rewritten[0] = trailerFlag;
  new DataView(rewritten.buffer).setUint32(1, lines.byteLength);
  rewritten.set(lines, 5);
  return rewritten;
}

/**
 * The request, with its body read only once its caller is authenticated from the headers: a call
 * without a valid token fails as connect starts reading, before a byte of the body is taken in,
 * and connect answers it in the call's own protocol. (A Connect GET has no body; its message is
 * in the URL, and the interceptor authenticates it.)
 */
function bodyAfterAuthentication(
  uReq: UniversalServerRequest,
  method: DescMethod,
  authenticate: HeaderAuthentication,
  onAuthenticated: () => void,
): UniversalServerRequest {
  const body = uReq.body;
  if (typeof body !== "object" || body === null || !(Symbol.asyncIterator in body)) return uReq;
  async function* checked(): AsyncIterable<Uint8Array> {
    if (await authenticate(method, uReq.header)) onAuthenticated();
    yield* body as AsyncIterable<Uint8Array>;
  }
  return { ...uReq, body: checked() };
}

/** Serves `services` on gRPC directly and on connect's router. */
export function createRpcAdapter(
  services: readonly ServiceImplSpec[],
  options: ConnectRouterOptions & { readonly authenticate: HeaderAuthentication },
): RequestHandler {
  const router = createConnectRouter({ acceptCompression: [compressionGzip, compressionBrotli], ...options });
  routesOf(services)(router);
  const handlers = new Map(router.handlers.map((handler) => [handler.requestPath, handler]));
  const grpcDirect = createGrpcDirect({
    services,
    interceptors: options.interceptors ?? [],
    readMaxBytes: options.readMaxBytes ?? 0xffffffff,
    authenticate: options.authenticate,
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
    const call = withGrpcWebText((uReq) =>
      handler(bodyAfterAuthentication(uReq, handler.method, options.authenticate, () => authenticated(req)))
        .then(clientFault)
        .then(grpcMessageAsSpecified),
    );
    call(universalRequestFromNodeRequest(req, res, undefined, undefined))
      .then((uRes) => universalResponseToNodeResponse(uRes, res))
      .catch(() => {
        // The client went away mid-response; there is no one left to answer.
        if (!res.headersSent) res.writeHead(499);
        res.end();
      });
  };
}
