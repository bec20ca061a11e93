/**
 * Unary gRPC over HTTP/2 (application/grpc, uncompressed), served straight on Node's request
 * and response: the one request message is read whole and decoded, goes through the same
 * interceptors to the method's implementation, and the answer leaves as one message and the
 * trailers. This is the call internal services make most; connect-node's general pipeline
 * (a chain of async iterables per call) cost several times the call's own work here, see
 * docs/performance.md. Streams, compression, gRPC-Web, Connect and JSON go through connect-node.
 */
import type http2 from "node:http2";
import { create, fromBinary, isMessage, toBinary, type DescMessage, type DescService, type MessageInitShape } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createContextValues,
  type HandlerContext,
  type Interceptor,
  type MethodImplSpec,
  type ServiceImplSpec,
  type UnaryRequest,
} from "@connectrpc/connect";
import { parseTimeout, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";

/** What an interceptor wraps: a call from request to response. */
type Call = Parameters<Interceptor>[0];
type UnarySpec = Extract<MethodImplSpec, { kind: "unary" }>;

interface UnaryMethod {
  readonly service: DescService;
  readonly spec: UnarySpec;
}

export interface GrpcUnaryOptions {
  readonly services: readonly ServiceImplSpec[];
  readonly interceptors: readonly Interceptor[];
  /** The largest request message accepted, in bytes. */
  readonly readMaxBytes: number;
}

const grpcContentTypes = new Set(["application/grpc", "application/grpc+proto"]);

/** The method's implementation behind the interceptors (the first one outermost), in `context`. */
function callIn(context: HandlerContext, spec: UnarySpec, interceptors: readonly Interceptor[]): Call {
  const output: DescMessage = spec.method.output;
  const implementation: Call = async (request) => {
    if (request.stream) throw new ConnectError("a unary method was called as a stream", Code.Internal);
    const result: unknown = await spec.impl(request.message, context);
    return {
      stream: false,
      service: request.service,
      method: spec.method,
      header: context.responseHeader,
      trailer: context.responseTrailer,
      message: isMessage(result, output) ? result : create(output, result as MessageInitShape<DescMessage>),
    };
  };
  return interceptors.reduceRight((next, interceptor) => interceptor(next), implementation);
}

/** The unary methods of the services, by request path. */
function unaryMethods(services: readonly ServiceImplSpec[]): Map<string, UnaryMethod> {
  const methods = new Map<string, UnaryMethod>();
  for (const { service, methods: specs } of services) {
    for (const spec of Object.values(specs)) {
      if (spec.kind === "unary") methods.set(`/${service.typeName}/${spec.method.name}`, { service, spec });
    }
  }
  return methods;
}

function webHeaders(headers: http2.IncomingHttpHeaders): Headers {
  const result = new Headers();
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith(":") || value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) result.append(name, v);
    else result.set(name, value);
  }
  return result;
}

function nodeHeaders(...sources: Headers[]): Record<string, string> {
  const result: Record<string, string> = {};
  for (const source of sources) source.forEach((value, name) => (result[name] = value));
  return result;
}

/** Collects the request body; rejects once it holds more than one message of at most `max` bytes. */
function readMessage(req: http2.Http2ServerRequest, max: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      length += chunk.length;
      if (length >= 5) {
        const head = chunks.length === 1 ? chunk : Buffer.concat(chunks);
        const size = head.readUInt32BE(1);
        if (size > max) {
          req.off("data", onData);
          reject(new ConnectError(`message size ${size} is larger than configured readMaxBytes ${max}`, Code.ResourceExhausted));
        }
      }
    };
    req.on("data", onData);
    req.once("error", reject);
    req.once("end", () => {
      const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
      if (body.length < 5) return reject(new ConnectError("protocol error: missing input message for unary method", Code.Unimplemented));
      if ((body[0] ?? 0) & 0b1) return reject(new ConnectError("protocol error: received compressed message without grpc-encoding", Code.Internal));
      const size = body.readUInt32BE(1);
      if (body.length < 5 + size) return reject(new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument));
      if (body.length > 5 + size) return reject(new ConnectError("protocol error: received extra input message for unary method", Code.Unimplemented));
      resolve(body.subarray(5));
    });
  });
}

function envelope(bytes: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(5 + bytes.length);
  frame[0] = 0;
  frame.writeUInt32BE(bytes.length, 1);
  frame.set(bytes, 5);
  return frame;
}

/**
 * Returns a handler that takes unary gRPC calls (true) and leaves every other request (false)
 * to the next handler.
 */
export function createGrpcUnary(options: GrpcUnaryOptions): (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => boolean {
  const methods = unaryMethods(options.services);
  return (req, res) => {
    if (req.method !== "POST") return false;
    const target = methods.get(req.url);
    if (target === undefined || !grpcContentTypes.has(req.headers["content-type"] ?? "")) return false;
    const encoding = req.headers["grpc-encoding"];
    if (encoding !== undefined && encoding !== "identity") return false;
    void serve(target, req, res, options);
    return true;
  };
}

/**
 * A handler context of our own, cheaper than connect's: its signal aborts only when the client
 * cancels or the deadline passes (not when the call completes), so the common path creates no
 * abort reasons, timers or linked signals.
 */
function handlerContext(target: UnaryMethod, req: http2.Http2ServerRequest, requestHeader: Headers, signal: AbortSignal, deadline: number | undefined): HandlerContext {
  return {
    service: target.service,
    method: target.spec.method,
    protocolName: "grpc",
    requestMethod: "POST",
    url: req.url,
    signal,
    timeoutMs: () => (deadline === undefined ? undefined : deadline - Date.now()),
    requestHeader,
    responseHeader: new Headers(),
    responseTrailer: new Headers(),
    values: createContextValues(),
  };
}

async function serve(target: UnaryMethod, req: http2.Http2ServerRequest, res: http2.Http2ServerResponse, options: GrpcUnaryOptions): Promise<void> {
  const { service, spec } = target;
  const method = spec.method;
  const abort = new AbortController();
  const onClose = () => {
    if (!res.writableFinished) abort.abort(new ConnectError("the client cancelled the call", Code.Canceled));
  };
  res.once("close", onClose);
  const requestHeader = webHeaders(req.headers);
  const timeout = parseTimeout(requestHeader.get("grpc-timeout"), Number.MAX_SAFE_INTEGER);
  // A deadline aborts the call's signal and answers DEADLINE_EXCEEDED, whether or not the
  // implementation is still at work.
  let timer: NodeJS.Timeout | undefined;
  const expired =
    timeout.timeoutMs === undefined
      ? undefined
      : new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            const error = new ConnectError("the call's deadline passed", Code.DeadlineExceeded);
            abort.abort(error);
            reject(error);
          }, timeout.timeoutMs);
        });
  const deadline = timeout.timeoutMs === undefined ? undefined : Date.now() + timeout.timeoutMs;
  const context = handlerContext(target, req, requestHeader, abort.signal, deadline);
  const contentType = { "content-type": "application/grpc+proto" };
  try {
    if (timeout.error !== undefined) throw timeout.error;
    const bytes = await (expired === undefined ? readMessage(req, options.readMaxBytes) : Promise.race([readMessage(req, options.readMaxBytes), expired]));
    let message;
    try {
      message = fromBinary(method.input, bytes);
    } catch (error) {
      throw new ConnectError(`parse binary: ${error instanceof Error ? error.message : String(error)}`, Code.InvalidArgument);
    }
    const request: UnaryRequest = {
      stream: false,
      service,
      method,
      requestMethod: "POST",
      url: req.url,
      signal: context.signal,
      header: requestHeader,
      contextValues: context.values,
      message,
    };
    const call = callIn(context, spec, options.interceptors)(request);
    const response = await (expired === undefined ? call : Promise.race([call, expired]));
    if (response.stream) throw new ConnectError("a unary method answered with a stream", Code.Internal);
    if (res.destroyed) return;
    res.writeHead(200, { ...contentType, ...nodeHeaders(response.header) });
    res.addTrailers({ ...nodeHeaders(response.trailer), "grpc-status": "0" });
    res.end(envelope(toBinary(method.output, response.message)));
  } catch (error) {
    if (res.destroyed || res.headersSent) return;
    const trailer = new Headers(context.responseTrailer);
    setTrailerStatus(trailer, ConnectError.from(error));
    res.writeHead(200, { ...contentType, ...nodeHeaders(context.responseHeader) });
    res.addTrailers(nodeHeaders(trailer));
    // An answer sent before the body was read (a refused oversized message): once it is out,
    // the stream is reset so the rest of the body is not buffered and the connection stays usable.
    res.once("finish", () => {
      if (!req.complete && !req.stream.destroyed) req.stream.close();
    });
    res.end();
  } finally {
    res.off("close", onClose);
    clearTimeout(timer);
  }
}
