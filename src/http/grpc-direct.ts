/**
 * gRPC over HTTP/2 (application/grpc, binary, uncompressed) served straight on Node's request
 * and response, for unary and server-streaming methods: the one request message is read whole
 * and decoded, goes through the same interceptors to the method's implementation, and each
 * answer leaves as one length-prefixed message, then the trailers. connect-node's general
 * pipeline (a chain of async iterables, abort signals and web headers per call) cost several
 * times the call's own work here; see docs/performance.md. A live body (WatchTalk,
 * WatchEvents; live/live-body.ts) writes its frames, encoded once for every watcher of an
 * event, straight to the response, and waits for the response's drain when it is full.
 * Compression, gRPC-Web, Connect, JSON and client streams go through connect-node.
 */
import http2 from "node:http2";
import {
  create,
  fromBinary,
  isMessage,
  toBinary,
  type DescMessage,
  type DescMethod,
  type DescService,
  type Message,
  type MessageInitShape,
} from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createContextValues,
  type HandlerContext,
  type Interceptor,
  type MethodImplSpec,
  type ServiceImplSpec,
  type StreamRequest,
  type UnaryRequest,
} from "@connectrpc/connect";
import { parseTimeout, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { LiveBody } from "../live/live-body.js";
import { envelope } from "./grpc-envelope.js";
import { respecGrpcMessage } from "./grpc-message.js";
import { authenticated } from "./listener.js";

/** What an interceptor wraps: a call from request to response. */
type Call = Parameters<Interceptor>[0];
type DirectSpec = Extract<MethodImplSpec, { kind: "unary" | "server_streaming" }>;

interface DirectMethod {
  readonly service: DescService;
  readonly spec: DirectSpec;
}

/**
 * Authenticates a call from its headers, before its body is read: true for a caller with a
 * valid token, false for a service that needs none; throws UNAUTHENTICATED (a ConnectError)
 * for a call that must be refused.
 */
export type HeaderAuthentication = (method: DescMethod, header: Headers) => Promise<boolean>;

export interface GrpcDirectOptions {
  readonly services: readonly ServiceImplSpec[];
  readonly interceptors: readonly Interceptor[];
  /** The largest request message accepted, in bytes. */
  readonly readMaxBytes: number;
  readonly authenticate: HeaderAuthentication;
}

const grpcContentTypes = new Set(["application/grpc", "application/grpc+proto"]);
const responseContentType = { "content-type": "application/grpc+proto" };

/** A streamed message's frame (for server-streaming methods that are not live bodies). */
function messageFrame(method: DirectSpec["method"], message: MessageInitShape<DescMessage>): Buffer {
  const output: DescMessage = method.output;
  return envelope(toBinary(output, isMessage(message, output) ? message : create(output, message)));
}

async function* single<T>(value: T): AsyncIterable<T> {
  yield value;
}

/** The method's implementation behind the interceptors (the first one outermost), in `context`. */
function callIn(context: HandlerContext, spec: DirectSpec, interceptors: readonly Interceptor[]): Call {
  const common = { service: context.service, header: context.responseHeader, trailer: context.responseTrailer };
  const implementation: Call = async (request) => {
    if (spec.kind === "unary") {
      if (request.stream) throw new ConnectError("a unary method was called as a stream", Code.Internal);
      const result = (await spec.impl(request.message, context)) as MessageInitShape<DescMessage>;
      const output: DescMessage = spec.method.output;
      return { ...common, method: spec.method, stream: false, message: isMessage(result, output) ? result : create(output, result) };
    }
    if (!request.stream) throw new ConnectError("a streaming method was called as unary", Code.Internal);
    let input: unknown;
    for await (const message of request.message) input = message;
    return { ...common, method: spec.method, stream: true, message: spec.impl(input as never, context) as AsyncIterable<never> };
  };
  return interceptors.reduceRight((next, interceptor) => interceptor(next), implementation);
}

/** The unary and server-streaming methods of the services, by request path. */
function directMethods(services: readonly ServiceImplSpec[]): Map<string, DirectMethod> {
  const methods = new Map<string, DirectMethod>();
  for (const { service, methods: specs } of services) {
    for (const spec of Object.values(specs)) {
      if (spec.kind === "unary" || spec.kind === "server_streaming") {
        methods.set(`/${service.typeName}/${spec.method.name}`, { service, spec });
      }
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

/** Collects the request body: exactly one message of at most `max` bytes. */
function readMessage(req: http2.Http2ServerRequest, max: number): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    let declared: number | undefined;
    const refuse = (error: ConnectError) => {
      req.off("data", onData);
      reject(error);
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      length += chunk.length;
      if (declared === undefined && length >= 5) {
        declared = Buffer.concat(chunks, 5).readUInt32BE(1);
        if (declared > max)
          refuse(new ConnectError(`message size ${declared} is larger than configured readMaxBytes ${max}`, Code.ResourceExhausted));
      }
      // One message and at most the start of another: more is not a unary request.
      if (declared !== undefined && length > 5 + declared + 5)
        refuse(new ConnectError("protocol error: received extra input message", Code.Unimplemented));
    };
    req.on("data", onData);
    req.once("error", reject);
    // A reset stream ends nothing: what was read is let go, and the call ends here.
    req.once("close", () => {
      if (!req.complete) refuse(new ConnectError("the client cancelled the call", Code.Canceled));
    });
    req.once("end", () => {
      const body = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
      if (body.length === 0) return reject(new ConnectError("protocol error: missing input message", Code.Unimplemented));
      if (body.length < 5) return reject(new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument));
      if ((body[0] ?? 0) & 0b1)
        return reject(new ConnectError("protocol error: received compressed message without grpc-encoding", Code.Internal));
      const size = body.readUInt32BE(1);
      const rest = body.length - 5 - size;
      if (rest < 0) return reject(new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument));
      if (rest > 0 && rest < 5) return reject(new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument));
      if (rest > 0) return reject(new ConnectError("protocol error: received extra input message", Code.Unimplemented));
      resolve(body.subarray(5));
    });
  });
}

/**
 * Returns a handler that takes unary and server-streaming gRPC calls (true) and leaves every
 * other request (false) to the next handler.
 */
export function createGrpcDirect(options: GrpcDirectOptions): (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => boolean {
  const methods = directMethods(options.services);
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
 * A call's abort signal, made only when something asks for it: unary methods never do, and an
 * AbortController per call was a visible share of a send's CPU. Once the call is cancelled, a
 * signal asked for later is already aborted.
 */
class LazyAbort {
  #controller: AbortController | undefined;
  #reason: unknown;
  #aborted = false;

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
  }
}

/**
 * A handler context of our own, cheaper than connect's: its signal aborts when the client
 * cancels or the deadline passes (not when the call completes), so the common path creates no
 * abort reasons, timers or linked signals.
 */
function handlerContext(
  target: DirectMethod,
  req: http2.Http2ServerRequest,
  requestHeader: Headers,
  abort: LazyAbort,
  deadline: number | undefined,
): HandlerContext {
  return {
    service: target.service,
    method: target.spec.method,
    protocolName: "grpc",
    requestMethod: "POST",
    url: req.url,
    get signal() {
      return abort.signal;
    },
    timeoutMs: () => (deadline === undefined ? undefined : deadline - Date.now()),
    requestHeader,
    responseHeader: new Headers(),
    responseTrailer: new Headers(),
    values: createContextValues(),
  };
}

/** Resolves once the response can take more, or has closed. */
function drained(res: http2.Http2ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      resolve();
    };
    res.once("drain", done);
    res.once("close", done);
  });
}

async function serve(
  target: DirectMethod,
  req: http2.Http2ServerRequest,
  res: http2.Http2ServerResponse,
  options: GrpcDirectOptions,
): Promise<void> {
  const { service, spec } = target;
  const method = spec.method;
  const abort = new LazyAbort();
  // The compat response reports itself finished once its stream closes, whoever closed it:
  // whether the answer was complete is tracked here.
  let answered = false;
  const onClose = () => {
    if (!answered) abort.abort(new ConnectError("the client cancelled the call", Code.Canceled));
  };
  res.once("close", onClose);
  const requestHeader = webHeaders(req.headers);
  const timeout = parseTimeout(requestHeader.get("grpc-timeout"), Number.MAX_SAFE_INTEGER);
  // A deadline aborts the call's signal and answers DEADLINE_EXCEEDED, whether or not the
  // implementation is still at work.
  let timer: NodeJS.Timeout | undefined;
  // Timers hold at most 2^31-1 ms (24.8 days); a longer deadline never passes in practice.
  const expired =
    timeout.timeoutMs === undefined || timeout.timeoutMs > 0x7fffffff
      ? undefined
      : new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            const error = new ConnectError("the call's deadline passed", Code.DeadlineExceeded);
            abort.abort(error);
            reject(error);
          }, timeout.timeoutMs);
        });
  const inTime = <T>(work: Promise<T>): Promise<T> => (expired === undefined ? work : Promise.race([work, expired]));
  const deadline = timeout.timeoutMs === undefined ? undefined : Date.now() + timeout.timeoutMs;
  const context = handlerContext(target, req, requestHeader, abort, deadline);
  const sendHeaders = () => {
    if (!res.headersSent) res.writeHead(200, { ...responseContentType, ...nodeHeaders(context.responseHeader) });
  };
  try {
    if (timeout.error !== undefined) throw timeout.error;
    // No byte of the body is read before the caller is authenticated from the headers: a call
    // without a valid token is refused (its stream reset) whatever body it announces.
    if (await inTime(options.authenticate(method, requestHeader))) authenticated(req);
    const bytes = await inTime(readMessage(req, options.readMaxBytes));
    let message: Message;
    try {
      message = fromBinary(method.input, bytes);
    } catch (error) {
      throw new ConnectError(`parse binary: ${error instanceof Error ? error.message : String(error)}`, Code.InvalidArgument);
    }
    const body =
      spec.kind === "unary"
        ? { method: spec.method, stream: false as const, message }
        : { method: spec.method, stream: true as const, message: single(message) };
    const request: UnaryRequest | StreamRequest = {
      service,
      requestMethod: "POST",
      url: req.url,
      // A getter: reading the signal makes it (see LazyAbort).
      get signal() {
        return abort.signal;
      },
      header: requestHeader,
      contextValues: context.values,
      ...body,
    };
    const response = await inTime(callIn(context, spec, options.interceptors)(request));
    if (!response.stream) {
      if (res.destroyed) return;
      res.writeHead(200, { ...responseContentType, ...nodeHeaders(response.header) });
      res.addTrailers({ ...nodeHeaders(response.trailer), "grpc-status": "0" });
      answered = true;
      res.end(envelope(toBinary(method.output, response.message)));
      return;
    }
    if (response.message instanceof LiveBody) {
      const body: LiveBody<unknown> = response.message;
      const drainListeners: (() => void)[] = [];
      try {
        await inTime(
          body.runFrames({
            write: (frame) => {
              if (res.destroyed) return false;
              sendHeaders();
              return res.write(frame);
            },
            onDrain: (listener) => {
              drainListeners.push(listener);
              res.on("drain", listener);
            },
          }),
        );
      } finally {
        for (const listener of drainListeners) res.off("drain", listener);
      }
    } else {
      for await (const item of response.message) {
        if (res.destroyed) break;
        sendHeaders();
        if (!res.write(messageFrame(method, item))) await inTime(drained(res));
      }
    }
    if (res.destroyed) return;
    sendHeaders();
    res.addTrailers({ ...nodeHeaders(response.trailer), "grpc-status": "0" });
    answered = true;
    res.end();
  } catch (error) {
    if (res.destroyed || res.writableEnded) return;
    const trailer = new Headers(context.responseTrailer);
    setTrailerStatus(trailer, ConnectError.from(error));
    respecGrpcMessage(trailer);
    if (!req.complete && !res.headersSent) {
      // Refused before the body was read (an oversized message): the status goes out as
      // trailers-only and the stream is reset, so the rest of the body is not taken in and the
      // stream stops counting against the connection's limit.
      answered = true;
      req.stream.respond({ ":status": 200, ...responseContentType, ...nodeHeaders(context.responseHeader, trailer) }, { endStream: true });
      req.stream.close(http2.constants.NGHTTP2_NO_ERROR);
      return;
    }
    sendHeaders();
    res.addTrailers(nodeHeaders(trailer));
    answered = true;
    res.end();
  } finally {
    res.off("close", onClose);
    clearTimeout(timer);
  }
}
