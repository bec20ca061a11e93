/**
 * Helpers for the live-events suites: background watchers that
 * record what a WatchTalk / WatchEvents stream delivers, a raw HTTP/2 Connect-streaming client
 * (to hold a stream without reading it), a WebSocket client, and event-sequence checks.
 */
import http2 from "node:http2";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { expect, vi } from "vitest";
import WebSocket from "ws";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Event, Heartbeat } from "../../gen/talk/v1/events_pb.js";
import type { Message } from "../../gen/talk/v1/resources_pb.js";
import { eventTypes } from "../../src/domain/model/events.js";
import { endStreamFlag, frame, FrameReader } from "./envelopes.js";
import type { TestAgent } from "./harness.js";

/** The event types, in the order a talk's whole life produces them in the all-types test. */
export const allEventTypes = eventTypes;

/** "message_created" -> "messageCreated", the payload oneof case of an event type. */
export const payloadCase = (type: string): string => type.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

/** The seqs of events, as numbers. */
export const seqsOf = (events: readonly Event[]): number[] => events.map((e) => Number(e.seq));

/** [from, from+1, ..., to] */
export const range = (from: number, to: number): number[] => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);

/** Asserts the events are exactly seq from..to, in order (no gap, no duplicate). */
export function expectContiguous(events: readonly Event[], from: number, to: number, label = "events"): void {
  expect(seqsOf(events), `${label}: seqs`).toEqual(range(from, to));
}

/** Records a stream in the background; `ended` with `error` once it ends (or is aborted). */
abstract class Recorder<R> {
  readonly events: Event[] = [];
  readonly heartbeats: Heartbeat[] = [];
  /** Every response, events and heartbeats, in arrival order. */
  readonly responses: R[] = [];
  error: ConnectError | undefined;
  ended = false;
  aborted = false;
  readonly done: Promise<void>;
  protected readonly controller = new AbortController();

  constructor(stream: (signal: AbortSignal) => AsyncIterable<R>) {
    this.done = (async () => {
      try {
        for await (const response of stream(this.controller.signal)) {
          this.responses.push(response);
          this.onResponse(response);
        }
      } catch (error) {
        this.error = ConnectError.from(error);
      } finally {
        this.ended = true;
      }
    })();
  }

  protected abstract onResponse(response: R): void;

  /** Cancels the stream and waits for it to end. */
  async abort(): Promise<void> {
    this.aborted = true;
    this.controller.abort();
    await this.done;
  }

  /** Waits until `n` events were received. */
  async waitEvents(n: number, timeoutMs = 10_000): Promise<Event[]> {
    await vi.waitFor(
      () =>
        expect(
          this.events.length >= n || (this.ended && this.events.length < n),
          `${n} events (got ${this.events.length}: ${this.describe()})`,
        ).toBe(true),
      { timeout: timeoutMs, interval: 20 },
    );
    if (this.events.length < n) throw new Error(`the stream ended after ${this.events.length} of ${n} events: ${this.describe()}`);
    return this.events;
  }

  /** Waits until the stream ends; returns its error (undefined when it ended without one). */
  async waitEnd(timeoutMs = 10_000): Promise<ConnectError | undefined> {
    await vi.waitFor(() => expect(this.ended, `the stream to end (${this.describe()})`).toBe(true), { timeout: timeoutMs, interval: 20 });
    return this.error;
  }

  /** Waits for the end and asserts its code. */
  async expectEnd(code: Code, timeoutMs = 10_000): Promise<ConnectError> {
    const error = await this.waitEnd(timeoutMs);
    expect(error === undefined ? "ended without error" : Code[error.code], `stream end: ${error?.message ?? ""}`).toBe(Code[code]);
    return error as ConnectError;
  }

  describe(): string {
    const tail = this.events.slice(-5).map((e) => `${e.chatId.slice(-4)}#${e.seq}:${e.type}`);
    return `events=${this.events.length} [...${tail.join(", ")}] ended=${this.ended} error=${this.error?.message ?? "none"}`;
  }
}

type TalkResponse = {
  kind: { case: "event"; value: Event } | { case: "heartbeat"; value: Heartbeat } | { case: undefined; value?: undefined };
};

/** A WatchTalk stream recorded in the background. */
export class TalkWatcher extends Recorder<TalkResponse> {
  constructor(
    readonly agent: TestAgent,
    readonly chatId: string,
    readonly afterSeq: number,
  ) {
    super((signal) => agent.talks.watchTalk({ chatId, afterSeq: BigInt(afterSeq) }, { signal }));
  }

  protected onResponse(response: TalkResponse): void {
    if (response.kind.case === "event") this.events.push(response.kind.value);
    else if (response.kind.case === "heartbeat") this.heartbeats.push(response.kind.value);
  }

  /** The seq of the last event received, or the starting after_seq. */
  get lastSeq(): number {
    const last = this.events.at(-1);
    return last === undefined ? this.afterSeq : Number(last.seq);
  }

  /** Waits until the event with `seq` was received. */
  async waitSeq(seq: number, timeoutMs = 10_000): Promise<void> {
    await vi.waitFor(() => expect(this.lastSeq >= seq || this.ended, `seq ${seq} (${this.describe()})`).toBe(true), {
      timeout: timeoutMs,
      interval: 20,
    });
    if (this.lastSeq < seq) throw new Error(`the stream ended before seq ${seq}: ${this.describe()}`);
  }
}

type FeedResponse = TalkResponse & { cursor: string };

/** A WatchEvents stream recorded in the background, with the last cursor received. */
export class FeedWatcher extends Recorder<FeedResponse> {
  cursor = "";

  constructor(
    readonly agent: TestAgent,
    readonly startCursor = "",
  ) {
    super((signal) => agent.talks.watchEvents({ cursor: startCursor }, { signal }));
  }

  protected onResponse(response: FeedResponse): void {
    this.cursor = response.cursor;
    if (response.kind.case === "event") this.events.push(response.kind.value);
    else if (response.kind.case === "heartbeat") this.heartbeats.push(response.kind.value);
  }

  /** Waits for the first response (the starting heartbeat), so the feed is following its talks. */
  async ready(timeoutMs = 10_000): Promise<void> {
    await vi.waitFor(() => expect(this.responses.length > 0 || this.ended, `the first response (${this.describe()})`).toBe(true), {
      timeout: timeoutMs,
      interval: 20,
    });
    if (this.responses.length === 0) throw new Error(`the feed ended before its first response: ${this.describe()}`);
  }

  /** The events of one talk, in arrival order. */
  of(chatId: string): Event[] {
    return this.events.filter((e) => e.chatId === chatId);
  }

  /** Waits until an event of `chatId` with seq >= `seq` was received. */
  async waitTalkSeq(chatId: string, seq: number, timeoutMs = 10_000): Promise<void> {
    const reached = () => this.of(chatId).some((e) => Number(e.seq) >= seq);
    await vi.waitFor(() => expect(reached() || this.ended, `talk ${chatId} seq ${seq} (${this.describe()})`).toBe(true), {
      timeout: timeoutMs,
      interval: 20,
    });
    if (!reached()) throw new Error(`the feed ended before talk ${chatId} seq ${seq}: ${this.describe()}`);
  }
}

/** Every event of a talk, replayed from 0 until its current last_seq. */
export async function replayAll(agent: TestAgent, chatId: string, timeoutMs = 10_000): Promise<Event[]> {
  const talk = (await agent.talks.getTalk({ id: chatId })).talk;
  const last = Number(talk?.lastSeq ?? 0n);
  const watcher = new TalkWatcher(agent, chatId, 0);
  try {
    await watcher.waitSeq(last, timeoutMs);
  } finally {
    await watcher.abort();
  }
  return watcher.events.filter((e) => Number(e.seq) <= last);
}

/** The talk's last_seq as a number. */
export async function lastSeqOf(agent: TestAgent, chatId: string): Promise<number> {
  return Number((await agent.talks.getTalk({ id: chatId })).talk?.lastSeq ?? -1n);
}

/** Every message of a talk (all pages), oldest first. */
export async function listAllMessages(agent: TestAgent, chatId: string): Promise<Message[]> {
  const all: Message[] = [];
  let pageToken = "";
  for (let page = 0; page < 100; page++) {
    const response = await agent.messages.listMessages({ chatId, pageSize: 200, pageToken });
    all.push(...response.result);
    pageToken = response.nextPageToken;
    if (pageToken === "") break;
  }
  return all.sort((x, y) => Number(x.seq - y.seq));
}

/** A garbage collector, if one can be had (node --expose-gc, or switched on at runtime). */
export function garbageCollector(): (() => void) | undefined {
  const existing = (globalThis as { gc?: () => void }).gc;
  if (typeof existing === "function") return existing;
  try {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as unknown;
    return typeof gc === "function" ? (gc as () => void) : undefined;
  } catch {
    return undefined;
  }
}

/** One decoded streaming envelope: JSON for Connect, raw bytes for gRPC. */
export interface Envelope {
  readonly flags: number;
  readonly json: Record<string, unknown>;
  readonly bytes: Buffer;
}

/**
 * A server-streaming call over raw HTTP/2, so the test decides when (and whether) the response
 * body is read: `pause()` leaves it unread, and HTTP/2 flow control then stops the server from
 * writing. Connect streaming with JSON by default (`message` is the JSON request); with
 * protocol "grpc", `message` is the binary protobuf request and the status is in `trailers`.
 */
export class RawConnectStream {
  readonly session: http2.ClientHttp2Session;
  readonly request: http2.ClientHttp2Stream;
  status: number | undefined;
  trailers: http2.IncomingHttpHeaders | undefined;
  readonly envelopes: Envelope[] = [];
  ended = false;
  failure: Error | undefined;
  readonly #reader = new FrameReader();
  /** Response body bytes taken in so far. */
  bytesRead = 0;

  constructor(
    baseUrl: string,
    token: string,
    path: string,
    message: unknown,
    readonly protocol: "connect" | "grpc" = "connect",
  ) {
    this.session = http2.connect(baseUrl);
    this.session.on("error", (error) => (this.failure ??= error));
    this.request = this.session.request({
      ":method": "POST",
      ":path": path,
      authorization: `Bearer ${token}`,
      ...(protocol === "connect"
        ? { "content-type": "application/connect+json", "connect-protocol-version": "1" }
        : { "content-type": "application/grpc+proto", te: "trailers" }),
    });
    this.request.on("response", (headers) => (this.status = Number(headers[":status"])));
    this.request.on("trailers", (trailers) => (this.trailers = trailers));
    this.request.on("error", (error) => (this.failure ??= error));
    this.request.on("end", () => (this.ended = true));
    this.request.on("close", () => (this.ended = true));
    this.request.end(frame(protocol === "connect" ? JSON.stringify(message) : (message as Uint8Array)));
  }

  /** Stops taking in the response body. */
  pause(): void {
    this.request.pause();
  }

  /** Takes in (and decodes) the response body from now on. */
  read(): void {
    this.request.on("data", (chunk: Buffer) => {
      this.bytesRead += chunk.length;
      for (const { flags, payload } of this.#reader.push(chunk)) {
        const json = this.protocol === "connect" ? (JSON.parse(payload.toString("utf8")) as Record<string, unknown>) : {};
        this.envelopes.push({ flags, json, bytes: payload });
      }
    });
    this.request.resume();
  }

  /** The data messages (flag 0) as bytes. */
  get messageBytes(): Buffer[] {
    return this.envelopes.filter((e) => (e.flags & endStreamFlag) === 0).map((e) => e.bytes);
  }

  /** The data messages (flag 0). */
  get messages(): Record<string, unknown>[] {
    return this.envelopes.filter((e) => (e.flags & endStreamFlag) === 0).map((e) => e.json);
  }

  /** The end-stream message (flag 2), once received. */
  get endStream(): Record<string, unknown> | undefined {
    return this.envelopes.find((e) => (e.flags & endStreamFlag) !== 0)?.json;
  }

  close(): void {
    if (!this.request.closed) this.request.close(http2.constants.NGHTTP2_CANCEL);
    this.session.destroy();
  }
}

/** A WebSocket client that records every frame it receives (parsed JSON). */
export class WsClient {
  readonly frames: Record<string, unknown>[] = [];
  readonly socket: WebSocket;
  closed = false;
  readonly opened: Promise<void>;

  constructor(url: string) {
    this.socket = new WebSocket(url);
    this.socket.on("message", (data) => {
      this.frames.push(JSON.parse(data.toString()) as Record<string, unknown>);
    });
    this.socket.on("close", () => (this.closed = true));
    this.socket.on("error", () => (this.closed = true));
    this.opened = new Promise((resolve, reject) => {
      this.socket.once("open", () => resolve());
      this.socket.once("error", reject);
      this.socket.once("unexpected-response", (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    });
  }

  send(frame: unknown): void {
    this.socket.send(typeof frame === "string" ? frame : JSON.stringify(frame));
  }

  /** Frames of a type ("ack", "error") or, for events, with a topic. */
  ofType(type: string): Record<string, unknown>[] {
    return this.frames.filter((f) => f["type"] === type);
  }

  /** Event frames (those with a seq) of a topic. */
  events(topic?: string): Record<string, unknown>[] {
    return this.frames.filter((f) => f["seq"] !== undefined && (topic === undefined || f["topic"] === topic));
  }

  /** Waits until a frame matching `predicate` arrived at index >= `from`; returns it. */
  async waitFrame(predicate: (frame: Record<string, unknown>) => boolean, from = 0, timeoutMs = 10_000): Promise<Record<string, unknown>> {
    const found = await vi.waitFor(
      () => {
        const frame = this.frames.slice(from).find(predicate);
        expect(
          frame !== undefined || this.closed,
          `a frame (${this.frames.length} frames, last: ${JSON.stringify(this.frames.at(-1))?.slice(0, 300)})`,
        ).toBe(true);
        return frame;
      },
      { timeout: timeoutMs, interval: 20 },
    );
    if (found === undefined) throw new Error(`the socket closed; frames: ${JSON.stringify(this.frames).slice(0, 500)}`);
    return found;
  }

  close(): void {
    this.socket.close();
  }
}

/** The HTTP status a WebSocket upgrade with these headers is refused with (or 101 when it is accepted). */
export function upgradeStatus(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers });
    socket.once("open", () => {
      socket.close();
      resolve(101);
    });
    socket.once("unexpected-response", (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
      socket.terminate();
    });
    socket.on("error", (error) => reject(error));
  });
}
