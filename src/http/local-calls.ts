/**
 * Calls of the served RPCs from inside the process (the WebSocket's subscriptions), through the
 * same interceptors as every gRPC, Connect and REST call: authentication, metrics, logs and
 * error mapping happen once, in src/rpc/. No protocol sits in between: the request and response
 * messages are handed over as objects, so an event message that many streams share stays one
 * object (and the WebSocket encodes it once). Going through a router transport instead (as REST
 * does) would encode and decode every event once per subscriber.
 */
import {
  create,
  isMessage,
  type DescMessage,
  type DescMethodServerStreaming,
  type DescMethodUnary,
  type MessageInitShape,
  type MessageShape,
} from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createContextValues,
  createHandlerContext,
  type Interceptor,
  type MethodImplSpec,
  type ServiceImplSpec,
} from "@connectrpc/connect";

/** What an interceptor wraps: a call from request to response. */
type Call = Parameters<Interceptor>[0];

/** One call: its headers (authorization, traceparent) and its signal (aborting it ends the call). */
export interface LocalCallInit {
  readonly header: Headers;
  readonly signal: AbortSignal;
}

export interface LocalCalls {
  unary<I extends DescMessage, O extends DescMessage>(
    method: DescMethodUnary<I, O>,
    input: MessageInitShape<I>,
    init: LocalCallInit,
  ): Promise<MessageShape<O>>;
  /**
   * The call's responses. Nothing happens before the first pull: interceptors, the handler and
   * its checks run then, and a refusal is thrown from the first `next()`.
   */
  serverStream<I extends DescMessage, O extends DescMessage>(
    method: DescMethodServerStreaming<I, O>,
    input: MessageInitShape<I>,
    init: LocalCallInit,
  ): AsyncIterable<MessageShape<O>>;
}

/** The protocol name handlers and interceptors see for these calls. */
const protocolName = "websocket";

/** The unary and server-streaming implementations of `services`, by "<service>/<method>". */
function implementations(services: readonly ServiceImplSpec[]): Map<string, MethodImplSpec> {
  const found = new Map<string, MethodImplSpec>();
  for (const { service, methods } of services) {
    for (const spec of Object.values(methods)) found.set(`${service.typeName}/${spec.method.name}`, spec);
  }
  return found;
}

function asMessage<O extends DescMessage>(schema: O, value: unknown): MessageShape<O> {
  return isMessage(value, schema) ? value : create(schema, value as MessageInitShape<O>);
}

async function* single<T>(value: T): AsyncIterable<T> {
  yield value;
}

/** Calls of the methods of `services`, each through `interceptors` (the first outermost). */
export function createLocalCalls(services: readonly ServiceImplSpec[], interceptors: readonly Interceptor[]): LocalCalls {
  const specs = implementations(services);

  const start = (method: DescMethodUnary | DescMethodServerStreaming, input: unknown, init: LocalCallInit): ReturnType<Call> => {
    const spec = specs.get(`${method.parent.typeName}/${method.name}`);
    if (spec === undefined || spec.kind !== method.methodKind) {
      return Promise.reject(new ConnectError(`${method.parent.typeName}/${method.name} is not served`, Code.Unimplemented));
    }
    const url = `/${method.parent.typeName}/${method.name}`;
    const values = createContextValues();
    const context = createHandlerContext({
      service: method.parent,
      method,
      protocolName,
      requestMethod: "POST",
      url,
      requestSignal: init.signal,
      requestHeader: init.header,
      contextValues: values,
    });
    const message = asMessage(method.input, input);
    const implementation: Call = async (request) => {
      const common = { service: method.parent, header: context.responseHeader, trailer: context.responseTrailer };
      if (spec.kind === "unary") {
        if (request.stream) throw new ConnectError("a unary method was called as a stream", Code.Internal);
        const result = await spec.impl(request.message, context);
        return { ...common, method: spec.method, stream: false, message: asMessage(spec.method.output, result) };
      }
      if (spec.kind !== "server_streaming" || !request.stream)
        throw new ConnectError("a streaming method was called as unary", Code.Internal);
      let first: unknown;
      for await (const received of request.message) first = received;
      const output = spec.method.output;
      const responses = spec.impl(first as never, context);
      async function* messages() {
        for await (const response of responses) yield asMessage(output, response);
      }
      return { ...common, method: spec.method, stream: true, message: messages() };
    };
    const call = interceptors.reduceRight((next, interceptor) => interceptor(next), implementation);
    const common = { service: method.parent, requestMethod: "POST", url, signal: init.signal, header: init.header, contextValues: values };
    return method.methodKind === "unary"
      ? call({ ...common, method, stream: false, message })
      : call({ ...common, method, stream: true, message: single(message) });
  };

  return {
    async unary(method, input, init) {
      const response = await start(method, input, init);
      if (response.stream) throw new ConnectError("a unary method answered with a stream", Code.Internal);
      return response.message as MessageShape<typeof method.output>;
    },
    async *serverStream(method, input, init) {
      const response = await start(method, input, init);
      if (!response.stream) throw new ConnectError("a streaming method answered once", Code.Internal);
      yield* response.message as AsyncIterable<MessageShape<typeof method.output>>;
    },
  };
}
