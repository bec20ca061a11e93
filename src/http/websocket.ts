/**
 * The spec's WebSocket at /v1.0/ws (and /v1.0/service_agents/ws); the token in the
 * Authorization header or, without one, in ?token= (src/http/bearer-token.ts). A client
 * sends {"type":"subscribe"|"unsubscribe","topics":[...]} and gets every event of its topics
 * as a JSON frame (the Event message in the spec's JSON dialect, rest/spec-dialect.ts, with
 * "topic" added). Topics follow the platform's <scope>:<scope_id>:<resource>:<resource_id> form:
 *   agent_id:<own agent id>:talk_chat:<talk id>     one talk the agent takes part in
 *   agent_id:<own agent id>:talk_chat:*             every talk of the agent, also ones it joins
 *   customer_id:<own customer id>:talk_chat:<talk id>   the same as the first
 * Each subscription is a WatchTalk or WatchEvents call made through the RPC interceptors
 * (local-calls.ts): authenticated, counted, logged and its errors mapped as every call is.
 * It is acknowledged once the call has opened, so a refused one gets its error frame only.
 * Bad frames and forbidden topics get {"type":"error",...} frames; the connection stays open.
 * The server pings every heartbeat interval and drops a socket that has answered no ping for
 * two intervals. The connection is closed with 1002/1007/1009 for a malformed frame (by `ws`),
 * 1008 for a client that leaves more than maxBufferedBytes unread, 4001 when its token
 * expires or a watch ends unauthenticated, 1012 on shutdown.
 */
import { STATUS_CODES, type IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { Code, ConnectError } from "@connectrpc/connect";
import { WebSocketServer, type WebSocket } from "ws";
import { TalkService, type WatchEventsResponse, type WatchTalkResponse } from "../../gen/talk/v1/talk_service_pb.js";
import { ResourceExhausted, Unauthenticated, type Identity } from "../rpc/domain-terms.js";
import { codeName, toConnectError } from "../rpc/errors.js";
import type { CallerAuthenticator } from "../rpc/interceptors.js";
import { bearerToken } from "./bearer-token.js";
import { httpStatusOf } from "./http-status.js";
import type { LocalCalls } from "./local-calls.js";
import {
  ackFrame,
  checkPosition,
  errorFrame,
  eventFrame,
  heartbeatFrame,
  parseFrame,
  parseTopic,
  type SubscribeRequest,
  type Topic,
} from "./websocket-protocol.js";

export const websocketPaths = ["/v1.0/ws", "/v1.0/service_agents/ws"] as const;

export interface WebSocketOptions {
  /** WatchTalk, WatchEvents and GetTalk, through the interceptors of every RPC. */
  readonly calls: LocalCalls;
  /** The token check of every call (rpc/interceptors.ts), made once for the upgrade. */
  readonly authenticate: CallerAuthenticator;
  /** Aborted when the process shuts down: every socket is then closed with 1012. */
  readonly shutdown: AbortSignal;
  /** How often the server pings each socket (and how long a ping may go unanswered). */
  readonly heartbeatMs: number;
  /** Bytes a client may leave unread before the socket is closed with 1008 as too slow. */
  readonly maxBufferedBytes: number;
  /** The largest frame a client may send. */
  readonly maxFrameBytes: number;
  /** Told why an upgrade was refused (for the debug log; never the token). */
  readonly onRefused?: (error: unknown) => void;
}

/** Close codes this server sends beyond the ones `ws` sends for malformed frames (1002, 1007, 1009). */
const closeCodes = {
  /** Policy violation: the client does not read what it asked for. */
  tooSlow: 1008,
  /** The service is restarting: reconnect (elsewhere). */
  restart: 1012,
  /** The credential ended (expired, or its agent is gone): reconnect with a new token. */
  unauthenticated: 4001,
} as const;

const tooSlowReason = "the client reads too slowly; reconnect and read what you subscribe to";
const expiredReason = "the token has expired; reconnect with a new token";
/** setTimeout's longest delay; a later expiry is waited for in steps. */
const maxTimerMs = 2 ** 31 - 1;

/** A close reason fits in a control frame: at most 123 bytes of UTF-8. */
function closeReason(reason: string): string {
  const bytes = Buffer.from(reason, "utf8");
  if (bytes.length <= 123) return reason;
  // Cut on a character boundary: drop a trailing partial character.
  return bytes
    .subarray(0, 123)
    .toString("utf8")
    .replace(/\uFFFD$/, "");
}

/** Per-connection limits (docs/api.md, WebSocket). */
const connectionLimits = {
  /** Subscriptions one connection may hold at once. */
  subscriptions: 100,
  /** Frames received and not yet answered before the server stops reading the socket. */
  pendingFrames: 16,
} as const;

type Response = WatchTalkResponse | WatchEventsResponse;

/** A subscription's call: aborting `controller` ends it. */
interface Subscription {
  readonly topic: string;
  readonly kind: Topic["kind"];
  readonly controller: AbortController;
  readonly responses: AsyncIterator<Response>;
  /** The call's first response (a heartbeat), read to know the call opened. */
  readonly first: Response | undefined;
}

/**
 * Ends a subscription that will not be read: its call's signal, and its responses (a paused
 * stream runs its cleanup, metrics and log line included, only when it is resumed or returned).
 */
function release(subscription: Subscription): void {
  subscription.controller.abort();
  subscription.responses.return?.().catch(() => undefined);
}

/** One client connection: its subscriptions, each a running call. */
class Connection {
  readonly #subscriptions = new Map<string, AbortController>();
  /** Frames are handled one after another, so acks and errors come back in request order. */
  #turn: Promise<void> = Promise.resolve();
  #pending = 0;
  #expiry: NodeJS.Timeout | undefined;
  #pinger: NodeJS.Timeout;
  /** When the client last answered a ping (or connected), and when the pinger last ran. */
  #lastPong = performance.now();
  #lastTick = performance.now();
  #ending = false;

  constructor(
    private readonly socket: WebSocket,
    private readonly caller: Identity,
    private readonly token: string,
    /** The upgrade's traceparent, passed on to each subscription's call. */
    private readonly traceparent: string | undefined,
    private readonly options: WebSocketOptions,
  ) {
    // A malformed frame makes `ws` close the socket with its code (1002, 1007, 1009) and then
    // emit the error; without a listener that error would end the process.
    socket.on("error", () => this.#stop());
    socket.on("message", (data, isBinary) => this.#receive(isBinary ? null : data.toString()));
    socket.on("close", () => this.#stop());
    socket.on("pong", () => (this.#lastPong = performance.now()));
    this.#pinger = setInterval(() => this.#ping(), options.heartbeatMs);
    this.#pinger.unref();
    this.#armExpiry();
  }

  /**
   * Pings the client; one that has answered no ping for two intervals (a dead peer, a proxy that
   * dropped the connection) is cut off: it would not read a close frame either. A tick that
   * comes late says this process was stalled, with pongs perhaps still unread: it judges no one.
   */
  #ping(): void {
    if (this.#ending) return;
    const now = performance.now();
    const interval = this.options.heartbeatMs;
    const onTime = now - this.#lastTick < 1.5 * interval;
    this.#lastTick = now;
    if (onTime && now - this.#lastPong > 2 * interval) {
      this.#stop();
      this.socket.terminate();
      return;
    }
    this.socket.ping();
  }

  #receive(text: string | null): void {
    // After the server decided to close, what the client still sends is read and dropped.
    if (this.#ending || this.socket.readyState !== this.socket.OPEN) return;
    this.#pending += 1;
    // Frames waiting for their answer hold memory: past a few, stop reading the client (TCP
    // then slows its writes) until they are answered.
    if (this.#pending >= connectionLimits.pendingFrames) this.socket.pause();
    this.#turn = this.#turn
      .then(() => this.#onFrame(text))
      .catch((error: unknown) => this.#send(errorFrame(error)))
      .finally(() => {
        this.#pending -= 1;
        if (this.socket.isPaused && this.#pending < connectionLimits.pendingFrames && !this.#ending) this.socket.resume();
      });
  }

  /** Ends the connection with a close code; its subscriptions end at once, not at the TCP close. */
  #end(code: number, reason: string): void {
    if (this.#ending) return;
    this.#stop();
    this.socket.close(code, closeReason(reason));
  }

  /** Releases what the connection holds: its calls (and their stream slots) and its timers. */
  #stop(): void {
    this.#ending = true;
    clearTimeout(this.#expiry);
    clearInterval(this.#pinger);
    for (const controller of this.#subscriptions.values()) controller.abort();
    this.#subscriptions.clear();
  }

  /** Closes the socket with 4001 when the caller's token expires. */
  #armExpiry(): void {
    const left = this.caller.expiresAt - Date.now();
    if (left === Infinity || Number.isNaN(left)) return;
    if (left <= 0) {
      this.#end(closeCodes.unauthenticated, expiredReason);
      return;
    }
    // A timer fires at most 2^31-1 ms ahead (a longer delay would fire at once); re-arm until then.
    this.#expiry = setTimeout(() => this.#armExpiry(), Math.min(left, maxTimerMs));
    this.#expiry.unref();
  }

  /**
   * Every server write goes through here: past maxBufferedBytes of unread data the client is
   * not reading, and the socket is closed rather than queueing more.
   */
  #send(frame: string): void {
    if (this.#ending || this.socket.readyState !== this.socket.OPEN) return;
    if (this.socket.bufferedAmount > this.options.maxBufferedBytes) {
      this.#end(closeCodes.tooSlow, tooSlowReason);
      return;
    }
    this.socket.send(frame);
  }

  async #onFrame(text: string | null): Promise<void> {
    if (this.#ending) return;
    const request = parseFrame(text);
    if (request.type === "unsubscribe") {
      for (const topic of request.topics) {
        this.#subscriptions.get(topic)?.abort();
        this.#subscriptions.delete(topic);
      }
      this.#send(ackFrame("unsubscribe", request.topics));
      return;
    }
    const done: string[] = [];
    const opened: Subscription[] = [];
    for (const topic of request.topics) {
      if (this.#ending) break;
      try {
        if (!this.#subscriptions.has(topic)) {
          if (this.#subscriptions.size >= connectionLimits.subscriptions) {
            throw new ResourceExhausted(
              `a connection holds at most ${connectionLimits.subscriptions} subscriptions; unsubscribe first or use the talk_chat:* topic`,
            );
          }
          const subscription = await this.#open(topic, request);
          if (this.#ending) {
            // The connection ended while the call opened: nothing will read it.
            release(subscription);
            break;
          }
          this.#subscriptions.set(topic, subscription.controller);
          opened.push(subscription);
        }
        done.push(topic);
      } catch (error) {
        this.#send(errorFrame(error, topic));
      }
    }
    if (this.#ending) {
      for (const subscription of opened) release(subscription);
      return;
    }
    if (done.length > 0) this.#send(ackFrame("subscribe", done));
    // A topic's frames (its opening heartbeat first) come after the ack that names it.
    for (const subscription of opened) void this.#pump(subscription);
  }

  /** A call's headers: the connection's token, and the upgrade's trace. */
  #header(): Headers {
    const header = new Headers({ authorization: `Bearer ${this.token}` });
    if (this.traceparent !== undefined) header.set("traceparent", this.traceparent);
    return header;
  }

  /**
   * Opens a topic's call and reads its first response: every check the call makes (the topic's
   * talk, the position, the caller's stream quota) has passed once this returns.
   */
  async #open(topic: string, request: SubscribeRequest): Promise<Subscription> {
    const parsed = parseTopic(this.caller, topic);
    checkPosition(parsed, request);
    const controller = new AbortController();
    const { calls } = this.options;
    const init = { header: this.#header(), signal: controller.signal };
    try {
      let responses: AsyncIterator<Response>;
      if (parsed.kind === "talk") {
        // Without a position a talk topic starts at the present: the talk's last seq.
        const afterSeq =
          request.afterSeq ?? (await calls.unary(TalkService.method.getTalk, { id: parsed.talkId }, init)).talk?.lastSeq ?? 0n;
        responses = calls.serverStream(TalkService.method.watchTalk, { chatId: parsed.talkId, afterSeq }, init)[Symbol.asyncIterator]();
      } else {
        responses = calls.serverStream(TalkService.method.watchEvents, { cursor: request.cursor ?? "" }, init)[Symbol.asyncIterator]();
      }
      const first = await responses.next();
      return { topic, kind: parsed.kind, controller, responses, first: first.done === true ? undefined : first.value };
    } catch (error) {
      controller.abort();
      throw error;
    }
  }

  /** A response as the frame the client gets. */
  #frameOf(subscription: Subscription, response: Response): string | undefined {
    const cursor = subscription.kind === "all" ? (response as WatchEventsResponse).cursor : undefined;
    const { kind } = response;
    if (kind.case === "event") return eventFrame(kind.value, subscription.topic, cursor);
    if (kind.case === "heartbeat") return heartbeatFrame(kind.value, subscription.topic, cursor);
    return undefined;
  }

  /** Sends a subscription's responses until its call ends. */
  async #pump(subscription: Subscription): Promise<void> {
    const { topic, controller, responses } = subscription;
    try {
      if (subscription.first !== undefined) this.#sendFrame(subscription, subscription.first);
      for await (const response of { [Symbol.asyncIterator]: () => responses }) {
        if (controller.signal.aborted) break;
        this.#sendFrame(subscription, response);
      }
    } catch (error) {
      if (controller.signal.aborted) return;
      // A credential that ended ends the connection: every other topic would end the same way.
      if (error instanceof ConnectError && error.code === Code.Unauthenticated) {
        this.#end(closeCodes.unauthenticated, error.rawMessage);
        return;
      }
      this.#send(errorFrame(error, topic));
    } finally {
      if (this.#subscriptions.get(topic) === controller) this.#subscriptions.delete(topic);
    }
  }

  #sendFrame(subscription: Subscription, response: Response): void {
    const frame = this.#frameOf(subscription, response);
    if (frame !== undefined) this.#send(frame);
  }
}

/** The caller's token, by the one rule of every edge (src/http/bearer-token.ts). */
function tokenOf(req: IncomingMessage): string {
  const found = bearerToken(req.headers.authorization, req.url);
  if (found.from === "none") throw new Unauthenticated("missing token: send Authorization: Bearer <token> or ?token=<token>");
  if (found.token === undefined) {
    throw new Unauthenticated(found.from === "header" ? 'the Authorization header must be "Bearer <token>"' : "the token is not valid");
  }
  return found.token;
}

/** Refuses an upgrade with the HTTP status and code of its error, as REST answers it. */
function refuse(socket: Duplex, error: unknown): void {
  if (socket.destroyed) return;
  const connectError = toConnectError(error);
  const status = httpStatusOf(connectError.code);
  const body = JSON.stringify({ code: codeName(connectError.code), message: connectError.rawMessage });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Error"}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/** Handles HTTP/1.1 upgrades to the WebSocket paths; returns false for other paths. */
export function createUpgradeHandler(options: WebSocketOptions): (req: IncomingMessage, socket: Duplex, head: Buffer) => boolean {
  // No permessage-deflate: inflating costs memory per socket, and an RSV1 frame is then a
  // protocol error (1002) rather than compressed data.
  const server = new WebSocketServer({ noServer: true, maxPayload: options.maxFrameBytes, perMessageDeflate: false });
  // With noServer nothing should reach this; a listener keeps a stray error from ending the process.
  server.on("error", () => undefined);
  // On shutdown every socket is closed with 1012 (service restart), after its subscriptions
  // have sent their UNAVAILABLE frames: clients reconnect elsewhere, and the listener does not
  // wait out its grace period for sockets nobody will use.
  options.shutdown.addEventListener(
    "abort",
    () =>
      setImmediate(() => {
        for (const client of server.clients) client.close(closeCodes.restart, "the server is shutting down; reconnect");
      }),
    { once: true },
  );
  return (req, socket, head) => {
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    if (!(websocketPaths as readonly string[]).includes(path)) return false;
    // The socket is ours until ws takes it: a reset while the token is checked must not throw.
    socket.on("error", () => socket.destroy());
    // The upgrade is refused (401) or accepted on the same checks the interceptor makes for
    // every subscription's call.
    const authenticate = async (): Promise<{ caller: Identity; token: string }> => {
      const token = tokenOf(req);
      return { caller: await options.authenticate(token), token };
    };
    const traceparent = typeof req.headers.traceparent === "string" ? req.headers.traceparent : undefined;
    authenticate().then(
      ({ caller, token }) => {
        if (socket.destroyed) return;
        server.handleUpgrade(req, socket, head, (ws) => new Connection(ws, caller, token, traceparent, options));
      },
      (error: unknown) => {
        options.onRefused?.(error);
        refuse(socket, error);
      },
    );
    return true;
  };
}
