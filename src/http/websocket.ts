/**
 * The spec's WebSocket at /v1.0/ws (and /v1.0/service_agents/ws), token in ?token=. A client
 * sends {"type":"subscribe"|"unsubscribe","topics":[...]} and gets every event of its topics
 * as a JSON frame (the Event message in proto JSON, with "topic" added). Topics follow the
 * platform's <scope>:<scope_id>:<resource>:<resource_id> form:
 *   agent_id:<own agent id>:talk_chat:<talk id>     one talk the agent takes part in
 *   agent_id:<own agent id>:talk_chat:*             every talk of the agent, also ones it joins
 *   customer_id:<own customer id>:talk_chat:<talk id>   the same as the first
 * Bad frames and forbidden topics get {"type":"error",...} frames; the connection stays open.
 */
import { toJson } from "@bufbuild/protobuf";
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
import { watchEvents, watchTalk, type WatchDeps } from "../domain/watch.js";
import { eventToProto } from "../rpc/to-proto.js";

export const websocketPaths = ["/v1.0/ws", "/v1.0/service_agents/ws"] as const;

export interface WebSocketOptions {
  readonly deps: DomainDeps;
  readonly watch: WatchDeps;
  readonly verify: TokenVerifier;
  readonly callers: Callers;
  /** Bytes a client may leave unread before its subscriptions are ended as too slow. */
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

function eventFrame(event: TalkEvent, topic: string): string {
  const json = toJson(EventSchema, eventToProto(event), { useProtoFieldName: true, alwaysEmitImplicit: true }) as object;
  return JSON.stringify({ ...json, topic });
}

/** One client connection: its subscriptions, each a running watch. */
class Connection {
  readonly #subscriptions = new Map<string, AbortController>();

  constructor(
    private readonly socket: WebSocket,
    private readonly caller: Identity,
    private readonly options: WebSocketOptions,
  ) {
    // Frames are handled one after another, so acks and errors come back in request order.
    let turn = Promise.resolve();
    socket.on("message", (data, isBinary) => {
      turn = turn.then(() => this.#onFrame(isBinary ? null : data.toString()));
    });
    socket.on("close", () => {
      for (const controller of this.#subscriptions.values()) controller.abort();
      this.#subscriptions.clear();
    });
  }

  #send(frame: string): void {
    if (this.socket.readyState === this.socket.OPEN) this.socket.send(frame);
  }

  async #onFrame(text: string | null): Promise<void> {
    let request: { type?: unknown; topics?: unknown; after_seq?: unknown };
    try {
      if (text === null) throw new InvalidArgument("frame", "must be a JSON text frame");
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new InvalidArgument("frame", "must be a JSON object");
      request = parsed;
      if (request.type !== "subscribe" && request.type !== "unsubscribe") {
        throw new InvalidArgument("type", 'must be "subscribe" or "unsubscribe"');
      }
      if (!Array.isArray(request.topics) || !request.topics.every((t): t is string => typeof t === "string")) {
        throw new InvalidArgument("topics", "must be an array of strings");
      }
      if (request.after_seq !== undefined && (typeof request.after_seq !== "number" || !Number.isSafeInteger(request.after_seq))) {
        throw new InvalidArgument("after_seq", "must be an integer");
      }
    } catch (error) {
      this.#send(errorFrame(error instanceof SyntaxError ? new InvalidArgument("frame", "is not JSON") : error));
      return;
    }
    const topics = request.topics as string[];
    const afterSeq = request.after_seq as number | undefined;
    const done: string[] = [];
    for (const topic of topics) {
      if (request.type === "unsubscribe") {
        this.#subscriptions.get(topic)?.abort();
        this.#subscriptions.delete(topic);
        done.push(topic);
        continue;
      }
      try {
        const parsed = parseTopic(this.caller, topic);
        if (!this.#subscriptions.has(topic)) {
          // A talk topic is acknowledged only once the caller is known to take part in it.
          const talk = parsed.kind === "talk" ? await getTalk(this.options.deps, this.caller, parsed.talkId) : null;
          const start = afterSeq ?? talk?.lastSeq ?? 0;
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
          if (item.kind === "event") this.#deliver(topic, item.event, controller);
        }
      } else {
        for await (const item of watchEvents(deps, watch, this.caller, { cursor: "" }, controller.signal)) {
          if (item.kind === "event") this.#deliver(topic, item.event, controller);
        }
      }
    };
    run().catch((error: unknown) => {
      if (this.#subscriptions.get(topic) === controller) this.#subscriptions.delete(topic);
      if (!controller.signal.aborted || controller.signal.reason instanceof DomainError) this.#send(errorFrame(error, topic));
    });
  }

  #deliver(topic: string, event: TalkEvent, controller: AbortController): void {
    if (this.socket.bufferedAmount > this.options.maxBufferedBytes) {
      controller.abort(new ResourceExhausted("the client reads too slowly; subscribe again to go on"));
      return;
    }
    this.#send(eventFrame(event, topic));
  }
}

function tokenOf(req: IncomingMessage): string | undefined {
  const query = new URL(req.url ?? "/", "http://localhost").searchParams.get("token");
  if (query !== null && query !== "") return query;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? "");
  return match?.[1];
}

function refuse(socket: Duplex, status: number, reason: string, message: string): void {
  const body = JSON.stringify({ code: reason, message });
  socket.end(
    `HTTP/1.1 ${status} ${status === 401 ? "Unauthorized" : "Forbidden"}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

/** Handles HTTP/1.1 upgrades to the WebSocket paths; returns false for other paths. */
export function createUpgradeHandler(options: WebSocketOptions): (req: IncomingMessage, socket: Duplex, head: Buffer) => boolean {
  const server = new WebSocketServer({ noServer: true, maxPayload: options.maxFrameBytes });
  // On shutdown every socket is closed with 1012 (service restart), after its subscriptions
  // have sent their UNAVAILABLE frames: clients reconnect elsewhere, and the listener does not
  // wait out its grace period for sockets nobody will use.
  options.watch.shutdown.addEventListener(
    "abort",
    () => setImmediate(() => {
      for (const client of server.clients) client.close(1012, "the server is shutting down; reconnect");
    }),
    { once: true },
  );
  return (req, socket, head) => {
    const path = new URL(req.url ?? "/", "http://localhost").pathname;
    if (!(websocketPaths as readonly string[]).includes(path)) return false;
    const token = tokenOf(req);
    const authenticate = async (): Promise<Identity> => {
      if (token === undefined) throw new Unauthenticated("missing ?token=");
      const caller = await options.verify(token);
      await options.callers.ensure(caller);
      return caller;
    };
    authenticate().then(
      (caller) => server.handleUpgrade(req, socket, head, (ws) => new Connection(ws, caller, options)),
      (error: unknown) =>
        error instanceof DomainError
          ? refuse(socket, error.kind === "unauthenticated" ? 401 : 403, error.kind, error.message)
          : refuse(socket, 403, "internal", "internal error"),
    );
    return true;
  };
}
