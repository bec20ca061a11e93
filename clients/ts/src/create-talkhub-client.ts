/**
 * The Talkhub client: typed clients of the three services over the Connect protocol (fetch, so
 * it runs in browsers and in Node 20+), a bearer token that may be refreshed, and WatchTalk /
 * WatchEvents that resume on their own after a dropped stream.
 */
import { createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { AgentService } from "../../../gen/talk/v1/agent_service_pb.js";
import { MessageService } from "../../../gen/talk/v1/message_service_pb.js";
import { TalkService, type WatchEventsResponse, type WatchTalkResponse } from "../../../gen/talk/v1/talk_service_pb.js";
import type { BackoffOptions } from "./backoff.js";
import { ResumableStream, type WatchOptions } from "./resumable-stream.js";
import { bearerInterceptor, type TokenSource } from "./token.js";
import { watchEventsCall, watchTalkCall } from "./watch-calls.js";

export interface TalkhubClientOptions {
  /** Where Talkhub listens, e.g. "http://localhost:8080" (or the page's origin). */
  readonly baseUrl: string;
  /** The agent's token, or a function asked for it before each call (see token.ts). */
  readonly token?: TokenSource;
  /** Protobuf binary on the wire (default true); false sends JSON, easier to read in devtools. */
  readonly useBinaryFormat?: boolean;
  /** More interceptors, run after the one that sets the token. */
  readonly interceptors?: readonly Interceptor[];
  /** The fetch to use (default globalThis.fetch). */
  readonly fetch?: typeof globalThis.fetch;
  /**
   * Another transport instead of Connect over fetch, e.g. gRPC over HTTP/2 in Node:
   * `(interceptors) => createGrpcTransport({ baseUrl, interceptors })` (@connectrpc/connect-node).
   * It must use the interceptors given, which carry the token.
   */
  readonly transport?: (interceptors: Interceptor[]) => Transport;
  /** Defaults of every watch: reconnect backoff and silence watchdog. */
  readonly watch?: { readonly backoff?: BackoffOptions; readonly idleMs?: number };
}

export interface WatchTalkStart {
  readonly chatId: string;
  /** Start after this seq: 0 (default) replays the retained log, the talk's last_seq starts now. */
  readonly afterSeq?: bigint | number;
}

export interface WatchEventsStart {
  /** A cursor from an earlier response; empty (default) starts now. */
  readonly cursor?: string;
}

export interface TalkhubClient {
  readonly talks: Client<typeof TalkService>;
  readonly messages: Client<typeof MessageService>;
  readonly agents: Client<typeof AgentService>;
  readonly transport: Transport;
  /**
   * A talk's events (and heartbeats) in seq order, resumed after the last seq delivered
   * whenever the stream breaks. Ends when `options.signal` aborts; throws a terminal error
   * (PERMISSION_DENIED after the caller left, NOT_FOUND after talk_deleted, OUT_OF_RANGE...).
   */
  watchTalk(request: WatchTalkStart, options?: WatchOptions): ResumableStream<WatchTalkResponse, bigint>;
  /** Every event of the caller's talks, resumed from the last cursor whenever the stream breaks. */
  watchEvents(request?: WatchEventsStart, options?: WatchOptions): ResumableStream<WatchEventsResponse, string>;
}

export function createTalkhubClient(options: TalkhubClientOptions): TalkhubClient {
  const interceptors = [bearerInterceptor(options.token), ...(options.interceptors ?? [])];
  const transport =
    options.transport?.(interceptors) ??
    createConnectTransport({
      baseUrl: options.baseUrl,
      useBinaryFormat: options.useBinaryFormat ?? true,
      interceptors,
      ...(options.fetch === undefined ? {} : { fetch: options.fetch }),
    });
  const talks = createClient(TalkService, transport);
  const withDefaults = (watch: WatchOptions | undefined): WatchOptions => ({ ...options.watch, ...watch });
  return {
    talks,
    messages: createClient(MessageService, transport),
    agents: createClient(AgentService, transport),
    transport,
    watchTalk: (request, watch) =>
      new ResumableStream(watchTalkCall(talks, request.chatId, BigInt(request.afterSeq ?? 0)), options.token, withDefaults(watch)),
    watchEvents: (request = {}, watch) =>
      new ResumableStream(watchEventsCall(talks, request.cursor ?? ""), options.token, withDefaults(watch)),
  };
}
