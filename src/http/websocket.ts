/**
 * The spec's WebSocket at /v1.0/ws (and /v1.0/service_agents/ws); the token in the
 * Authorization header or, without one, in ?token= (src/http/bearer-token.ts). A client
 * sends {"type":"subscribe"|"unsubscribe","topics":[...]} and gets every event of its topics
 * as a JSON frame (the Event message in the spec's JSON dialect, rest/spec-dialect.ts, with
 * "topic" added). Topics follow the platform's <scope>:<scope_id>:<resource>:<resource_id> form:
 *   agent_id:<own agent id>:talk_chat:<talk id>     one talk the agent takes part in
 *   agent_id:<own agent id>:talk_chat:*             every talk of the agent, also ones it joins
 *   customer_id:<own customer id>:talk_chat:<talk id>   the same as the first
 * Bad frames and forbidden topics get {"type":"error",...} frames; the connection stays open.
 * The connection is closed with 1002/1007/1009 for a malformed frame (by `ws`), 1008 for a
 * client that leaves more than maxBufferedBytes unread, 4001 when its token expires or a watch
 * ends unauthenticated, 1012 on shutdown.
 */
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { WebSocketServer, type WebSocket } from "ws";
import { EventSchema } from "../../gen/talk/v1/events_pb.js";
import type { TokenVerifier } from "../auth/verifier.js";
import type { Callers } from "../domain/agents.js";
import type { DomainDeps } from "../domain/deps.js";
import { DomainError, InvalidArgument, PermissionDenied, ResourceExhausted, Unauthenticated } from "../domain/errors.js";
import type { TalkEvent } from "../domain/events.js";
import { isUuid } from "../domain/ids.js";
import type { Identity } from "../domain/identity.js";
import { getTalk } from "../domain/talks.js";
import { watchEvents, watchTalk, type WatchDeps } from "../live/watch.js";
import { eventToProto } from "../rpc/to-proto.js";
import { bearerToken } from "./bearer-token.js";
import { toSpecJson } from "./rest/spec-dialect.js";

export const websocketPaths = ["/v1.0/ws", "/v1.0/service_agents/ws"] as const;

export interface WebSocketOptions {
  readonly deps: DomainDeps;
  readonly watch: WatchDeps;
  readonly verify: TokenVerifier;
  readonly callers: Callers;
  /** Bytes a client may leave unread before the socket is closed with 1008 as too slow. */
  readonly maxBufferedBytes: number;
  /** The largest frame a client may send. */
  readonly maxFrameBytes: number;
}

type Topic = { readonly kind: "talk"; readonly talkId: string } | { readonly kind: "all" };

const talkResources = new Set(["talk_chat", "talk", "talk_chats"]);

/** Parses a topic; InvalidArgument or PermissionDenied when it is not one this caller may have. */
export function parseTopic(caller: Identity, topic: string): Topic {
  const parts = topic.split(":");
  const [scope, scopeId, resource, resourceId] = parts;
  if (parts.length !== 4 || scope === undefined || scopeId === undefined || resource === undefined || resourceId === undefined) {
    throw new InvalidArgument("topics", `"${topic.slice(0, 100)}" is not <scope>:<scope_id>:talk_chat:<talk_id or *>`);
  }
  if (!talkResources.has(resource)) throw new InvalidArgument("topics", `unknown resource "${resource.slice(0, 40)}"; use talk_chat`);
  if (scope === "agent_id") {
    if (scopeId.toLowerCase() !== caller.agentId) throw new PermissionDenied("an agent may only subscribe to its own agent_id topics");
  } else if (scope === "customer_id") {
    if (scopeId.toLowerCase() !== caller.customerId) throw new PermissionDenied("another customer's topic");
    if (resourceId === "*") throw new PermissionDenied("customer-wide talk topics are not offered; use agent_id:<id>:talk_chat:*");
  } else {
    throw new InvalidArgument("topics", `unknown scope "${scope.slice(0, 40)}"; use agent_id or customer_id`);
  }
  if (resourceId === "*") return { kind: "all" };
  if (!isUuid(resourceId)) throw new InvalidArgument("topics", `"${resourceId.slice(0, 40)}" is not a talk id`);
  return { kind: "talk", talkId: resourceId.toLowerCase() };
}

function errorFrame(error: unknown, topic?: string): string {
  const known = error instanceof DomainError;
  return JSON.stringify({
    type: "error",
    code: known ? error.kind : "internal",
    message: known ? error.message : "internal error",
    ...(topic === undefined ? {} : { topic }),
  });
}

/** An event as its frame: the Event in the spec's JSON dialect, as on the REST paths, plus its topic. */
function eventFrame(event: TalkEvent, topic: string): string {
  return JSON.stringify({ ...toSpecJson(EventSchema, eventToProto(event)), topic });
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
  return bytes.subarray(0, 123).toString("utf8").replace(/\uFFFD$/, "");
}

/** Per-connection limits (docs/api.md, WebSocket). */
const connectionLimits = {
  /** Topics one subscribe or unsubscribe frame may name. */
  topicsPerFrame: 100,
  /** The longest topic; real ones are under 100 characters. */
  topicChars: 200,
  /** Subscriptions one connection may hold at once. */
  subscriptions: 100,
  /** Frames received and not yet answered before the server stops reading the socket. */
  pendingFrames: 16,
} as const;

/** One client connection: its subscriptions, each a running watch. */
class Connection {
  readonly #subscriptions = new Map<string, AbortController>();
  /** Frames are handled one after another, so acks and errors come back in request order. */
  #turn: Promise<void> = Promise.resolve();
  #pending = 0;
  #expiry: NodeJS.Timeout | undefined;
  #ending = false;

  constructor(
    private readonly socket: WebSocket,
    private readonly caller: Identity,
    private readonly options: WebSocketOptions,
  ) {
    // A malformed frame makes `ws` close the socket with its code (1002, 1007, 1009) and then
    // emit the error; without a listener that error would end the process.
    socket.on("error", () => this.#stop());
    socket.on("message", (data, isBinary) => this.#receive(isBinary ? null : data.toString()));
    socket.on("close", () => this.#stop());
    this.#armExpiry();
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

  /** Releases what the connection holds: its watches (and their stream slots) and its timer. */
  #stop(): void {
    this.#ending = true;
    clearTimeout(this.#expiry);
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
    let request: { type: "subscribe" | "unsubscribe"; topics: string[]; afterSeq: number | undefined };
    try {
      request = parseFrame(text);
    } catch (error) {
      this.#send(errorFrame(error));
      return;
    }
    const done: string[] = [];
    for (const topic of request.topics) {
      if (this.#ending) return;
      if (request.type === "unsubscribe") {
        this.#subscriptions.get(topic)?.abort();
        this.#subscriptions.delete(topic);
        done.push(topic);
        continue;
      }
      try {
        const parsed = parseTopic(this.caller, topic);
        if (!this.#subscriptions.has(topic)) {
          if (this.#subscriptions.size >= connectionLimits.subscriptions) {
            throw new ResourceExhausted(
              `a connection holds at most ${connectionLimits.subscriptions} subscriptions; unsubscribe first or use the talk_chat:* topic`,
            );
          }
          // A talk topic is acknowledged only once the caller is known to take part in it.
          const talk = parsed.kind === "talk" ? await getTalk(this.options.deps, this.caller, parsed.talkId) : null;
          if (this.#ending) return;
          const start = request.afterSeq ?? talk?.lastSeq ?? 0;
          this.#subscribe(topic, parsed, start);
        }
        done.push(topic);
      } catch (error) {
        this.#send(errorFrame(error, topic));
      }
    }
    if (done.length > 0) this.#send(JSON.stringify({ type: "ack", action: request.type, topics: done }));
  }

  #subscribe(topic: string, parsed: Topic, start: number): void {
    const controller = new AbortController();
    this.#subscriptions.set(topic, controller);
    const { deps, watch } = this.options;
    const run = async () => {
      if (parsed.kind === "talk") {
        for await (const item of watchTalk(deps, watch, this.caller, { chatId: parsed.talkId, afterSeq: start }, controller.signal)) {
          if (item.kind === "event") this.#send(eventFrame(item.event, topic));
        }
      } else {
        for await (const item of watchEvents(deps, watch, this.caller, { cursor: "" }, controller.signal)) {
          if (item.kind === "event") this.#send(eventFrame(item.event, topic));
        }
      }
    };
    run().catch((error: unknown) => {
      if (this.#subscriptions.get(topic) === controller) this.#subscriptions.delete(topic);
      if (controller.signal.aborted) return;
      // A credential that ended ends the connection: every other topic would end the same way.
      if (error instanceof DomainError && error.kind === "unauthenticated") this.#end(closeCodes.unauthenticated, error.message);
      else this.#send(errorFrame(error, topic));
    });
  }
}

/** Checks a client frame into a request; InvalidArgument for anything else. */
function parseFrame(text: string | null): { type: "subscribe" | "unsubscribe"; topics: string[]; afterSeq: number | undefined } {
  if (text === null) throw new InvalidArgument("frame", "must be a JSON text frame");
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Any failure to parse (also a nesting too deep for the parser) is the client's.
    throw new InvalidArgument("frame", "is not JSON");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new InvalidArgument("frame", "must be a JSON object");
  // Own properties only: a "__proto__" key of the frame is data, never the prototype.
  const field = (name: string): unknown => (Object.hasOwn(parsed, name) ? (parsed as Record<string, unknown>)[name] : undefined);
  const type = field("type");
  const topics = field("topics");
  const afterSeq = field("after_seq");
  if (type !== "subscribe" && type !== "unsubscribe") throw new InvalidArgument("type", 'must be "subscribe" or "unsubscribe"');
  if (!Array.isArray(topics) || !topics.every((t): t is string => typeof t === "string")) {
    throw new InvalidArgument("topics", "must be an array of strings");
  }
  if (topics.length > connectionLimits.topicsPerFrame) {
    throw new InvalidArgument("topics", `at most ${connectionLimits.topicsPerFrame} topics per frame`);
  }
  if (topics.some((t) => t.length > connectionLimits.topicChars)) {
    throw new InvalidArgument("topics", `a topic has at most ${connectionLimits.topicChars} characters`);
  }
  if (afterSeq !== undefined && (typeof afterSeq !== "number" || !Number.isSafeInteger(afterSeq))) {
    throw new InvalidArgument("after_seq", "must be an integer");
  }
  if (afterSeq !== undefined && afterSeq < 0) throw new InvalidArgument("after_seq", "must not be negative");
  return { type, topics, afterSeq };
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

function refuse(socket: Duplex, status: number, reason: string, message: string): void {
  if (socket.destroyed) return;
  const body = JSON.stringify({ code: reason, message });
  socket.end(
    `HTTP/1.1 ${status} ${status === 401 ? "Unauthorized" : "Forbidden"}\r\nContent-Type: application/json\r\n` +
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
  options.watch.shutdown.addEventListener(
    "abort",
    () => setImmediate(() => {
      for (const client of server.clients) client.close(closeCodes.restart, "the server is shutting down; reconnect");
    }),
    { once: true },
  );
  return (req, socket, head) => {
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    if (!(websocketPaths as readonly string[]).includes(path)) return false;
    // The socket is ours until ws takes it: a reset while the token is checked must not throw.
    socket.on("error", () => socket.destroy());
    const authenticate = async (): Promise<Identity> => {
      const caller = await options.verify(tokenOf(req));
      await options.callers.ensure(caller);
      return caller;
    };
    authenticate().then(
      (caller) => {
        if (socket.destroyed) return;
        server.handleUpgrade(req, socket, head, (ws) => new Connection(ws, caller, options));
      },
      (error: unknown) =>
        error instanceof DomainError
          ? refuse(socket, error.kind === "unauthenticated" ? 401 : 403, error.kind, error.message)
          : refuse(socket, 403, "internal", "internal error"),
    );
    return true;
  };
}
