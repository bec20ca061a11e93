/**
 * The WebSocket's frames (docs/events.md, WebSocket): what a client may send (subscribe and
 * unsubscribe, with topics and a position) and what the server sends (acks, errors, events,
 * heartbeats), all JSON text frames.
 */
import { ConnectError } from "@connectrpc/connect";
import { EventSchema, HeartbeatSchema, type Event, type Heartbeat } from "../../gen/talk/v1/events_pb.js";
import { InvalidArgument, PermissionDenied } from "../domain/model/errors.js";
import { isUuid } from "../domain/model/ids.js";
import type { Identity } from "../domain/model/identity.js";
import { codeName, toConnectError } from "../rpc/errors.js";
import { toSpecJson } from "./rest/spec-dialect.js";

export type Topic = { readonly kind: "talk"; readonly talkId: string } | { readonly kind: "all" };

export interface SubscribeRequest {
  readonly type: "subscribe";
  readonly topics: readonly string[];
  /** A talk topic's position: events after it are sent (absent: from the present). */
  readonly afterSeq: bigint | undefined;
  /** The "*" topic's position: a cursor of an earlier frame (absent: from the present). */
  readonly cursor: string | undefined;
}

export type ClientRequest = SubscribeRequest | { readonly type: "unsubscribe"; readonly topics: readonly string[] };

/** Limits of a client frame (docs/api.md, WebSocket). */
export const frameLimits = {
  /** Topics one subscribe or unsubscribe frame may name. */
  topicsPerFrame: 100,
  /** The longest topic; real ones are under 100 characters. */
  topicChars: 200,
  /** The longest cursor; real ones stay under a few KiB (at most 256 talks). */
  cursorChars: 16 * 1024,
} as const;

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

/** The largest int64, the largest after_seq proto3 JSON can carry. */
const int64Max = 2n ** 63n - 1n;

/**
 * after_seq as proto3 JSON reads an int64: a JSON number that is an integer, or a string of
 * decimal digits (REST answers int64 as strings, so clients pass them back so). null is absent.
 */
function parseAfterSeq(value: unknown): bigint | undefined {
  if (value === undefined || value === null) return undefined;
  let seq: bigint;
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) throw new InvalidArgument("after_seq", "must be an integer (a JSON number or a string of digits)");
    seq = BigInt(value);
  } else if (typeof value === "string") {
    if (!/^-?[0-9]{1,20}$/.test(value)) throw new InvalidArgument("after_seq", "must be an integer (a JSON number or a string of digits)");
    seq = BigInt(value);
    if (seq > int64Max) throw new InvalidArgument("after_seq", "is larger than an int64");
  } else {
    throw new InvalidArgument("after_seq", "must be an integer (a JSON number or a string of digits)");
  }
  if (seq < 0n) throw new InvalidArgument("after_seq", "must not be negative");
  return seq;
}

function parseCursor(value: unknown): string | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  if (typeof value !== "string") throw new InvalidArgument("cursor", "must be a string: the cursor of a frame of the * topic");
  if (value.length > frameLimits.cursorChars) throw new InvalidArgument("cursor", `has at most ${frameLimits.cursorChars} characters`);
  return value;
}

/** Checks a client frame into a request; InvalidArgument for anything else. */
export function parseFrame(text: string | null): ClientRequest {
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
  if (type !== "subscribe" && type !== "unsubscribe") throw new InvalidArgument("type", 'must be "subscribe" or "unsubscribe"');
  if (!Array.isArray(topics) || !topics.every((t): t is string => typeof t === "string")) {
    throw new InvalidArgument("topics", "must be an array of strings");
  }
  if (topics.length > frameLimits.topicsPerFrame) {
    throw new InvalidArgument("topics", `at most ${frameLimits.topicsPerFrame} topics per frame`);
  }
  if (topics.some((t) => t.length > frameLimits.topicChars)) {
    throw new InvalidArgument("topics", `a topic has at most ${frameLimits.topicChars} characters`);
  }
  if (type === "unsubscribe") return { type, topics };
  return { type, topics, afterSeq: parseAfterSeq(field("after_seq")), cursor: parseCursor(field("cursor")) };
}

/** A position is for one kind of topic; InvalidArgument when the request gives the other kind's. */
export function checkPosition(topic: Topic, request: SubscribeRequest): void {
  if (topic.kind === "talk" && request.cursor !== undefined) {
    throw new InvalidArgument("cursor", "resumes the * topic; a talk topic resumes with after_seq");
  }
  if (topic.kind === "all" && request.afterSeq !== undefined) {
    throw new InvalidArgument("after_seq", "is a talk topic's position; the * topic resumes with the cursor of its frames");
  }
}

/** An error as a frame, with the code and message every other protocol gives it (src/rpc/errors.ts). */
export function errorFrame(error: unknown, topic?: string): string {
  const connectError = error instanceof ConnectError ? error : toConnectError(error);
  const requestId = connectError.metadata.get("x-request-id");
  return JSON.stringify({
    type: "error",
    code: codeName(connectError.code),
    message: connectError.rawMessage,
    ...(topic === undefined ? {} : { topic }),
    ...(requestId === null ? {} : { request_id: requestId }),
  });
}

export function ackFrame(action: ClientRequest["type"], topics: readonly string[]): string {
  return JSON.stringify({ type: "ack", action, topics });
}

/** An event's JSON (the spec's dialect, as on REST), made once per event message however many sockets it goes to. */
const eventJson = new WeakMap<Event, string>();

/**
 * An event frame: the Event in the spec's JSON dialect (http/rest/spec-dialect.ts) plus "topic" (and, on the * topic, the "cursor" that
 * resumes after it). Only the tail differs between subscribers.
 */
export function eventFrame(event: Event, topic: string, cursor?: string): string {
  let json = eventJson.get(event);
  if (json === undefined) {
    json = JSON.stringify(toSpecJson(EventSchema, event));
    eventJson.set(event, json);
  }
  return `${json.slice(0, -1)},"topic":${JSON.stringify(topic)}${cursor === undefined ? "" : `,"cursor":${JSON.stringify(cursor)}`}}`;
}

/**
 * A heartbeat frame, shaped as an event frame is (the type, its payload under the type's name,
 * the topic): a talk topic's says the last seq sent on it, the * topic's carries its cursor.
 */
export function heartbeatFrame(heartbeat: Heartbeat, topic: string, cursor?: string): string {
  // The * topic's position is its cursor; a last_seq there would name no talk.
  const { last_seq: lastSeq, ...rest } = toSpecJson(HeartbeatSchema, heartbeat);
  const payload = cursor === undefined ? { last_seq: lastSeq, ...rest } : rest;
  return JSON.stringify({ type: "heartbeat", heartbeat: payload, topic, ...(cursor === undefined ? {} : { cursor }) });
}
