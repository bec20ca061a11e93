/**
 * Streams give back what they hold on every way they can end: 1,000 WatchTalk and WatchEvents
 * streams per backend are opened and cancelled in every phase (reset before the body, cancel at
 * once, after the first heartbeat, during replay, during live, deadline, REST closed early,
 * connection destroyed, over gRPC, Connect and REST), and then the agent's stream quota reads
 * zero, no talk feed is left, and the agent can open its 100 streams again. Also: the REST
 * NDJSON stream respects the socket's buffer (a reader that stops is cut off, not buffered).
 */
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { create, fromBinary, toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { describe, expect, it, vi } from "vitest";
import {
  WatchEventsRequestSchema,
  WatchEventsResponseSchema,
  WatchTalkRequestSchema,
  WatchTalkResponseSchema,
} from "../../gen/talk/v1/talk_service_pb.js";
import { noAbuseLimits } from "../../src/config.js";
import { Canceled } from "../../src/domain/model/errors.js";
import type { AgentId, CustomerId } from "../../src/domain/model/ids.js";
import { StreamQuota } from "../../src/domain/stream-quota.js";
import { WatchScope } from "../../src/live/watch-scope.js";
import { frame } from "../support/envelopes.js";
import { Code, createTalk, liveBackends, newCustomer, sendText, useService, type TestAgent, type TestEnv } from "../support/harness.js";
import { FeedWatcher, TalkWatcher, lastSeqOf, range } from "../support/live-helpers.js";

const backends = await liveBackends();

const streamsPerAgent = 100;
/** Streams in flight at once, well under the quota: a refused stream would prove nothing. */
const parallel = 16;

type Method = "WatchTalk" | "WatchEvents";

/** What one stream asks for: the request of its method, and its REST path. */
interface Target {
  readonly method: Method;
  readonly path: string;
  readonly request: Uint8Array;
  readonly json: Record<string, string>;
  readonly restPath: string;
  readonly output: DescMessage;
}

function targets(chatId: string, afterSeq: number, cursor: string): Record<Method, Target> {
  return {
    WatchTalk: {
      method: "WatchTalk",
      path: "/talk.v1.TalkService/WatchTalk",
      request: toBinary(WatchTalkRequestSchema, create(WatchTalkRequestSchema, { chatId, afterSeq: BigInt(afterSeq) })),
      json: { chat_id: chatId, after_seq: String(afterSeq) },
      restPath: `/v1.0/talks/${chatId}/events?after_seq=${afterSeq}`,
      output: WatchTalkResponseSchema,
    },
    WatchEvents: {
      method: "WatchEvents",
      path: "/talk.v1.TalkService/WatchEvents",
      request: toBinary(WatchEventsRequestSchema, create(WatchEventsRequestSchema, { cursor })),
      json: { cursor },
      restPath: `/v1.0/events?cursor=${encodeURIComponent(cursor)}`,
      output: WatchEventsResponseSchema,
    },
  };
}

/** Whether a decoded response carries an event (not a heartbeat). */
function isEvent(message: MessageShape<DescMessage>): boolean {
  return (message as { kind?: { case?: string } }).kind?.case === "event";
}

/** Runs `count` jobs, `parallel` at a time. */
async function inBatches(count: number, job: (i: number) => Promise<void>): Promise<void> {
  for (let start = 0; start < count; start += parallel) {
    await Promise.all(range(start, Math.min(count, start + parallel) - 1).map(job));
  }
}

/** Settles when `emitter` emits `event`, or after `ms` (a stream that never answers is still cut). */
function firstOf(emitter: NodeJS.EventEmitter, events: readonly string[], ms = 5_000): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      for (const event of events) emitter.off(event, done);
      resolve();
    }
    for (const event of events) emitter.once(event, done);
  });
}

/** One raw gRPC call on an HTTP/2 session, reset with CANCEL at the moment `when` names. */
async function rawReset(
  session: http2.ClientHttp2Session,
  token: string,
  target: Target,
  when: "headers" | "body" | "first-data",
): Promise<void> {
  const stream = session.request({
    ":method": "POST",
    ":path": target.path,
    "content-type": "application/grpc+proto",
    te: "trailers",
    authorization: `Bearer ${token}`,
  });
  stream.on("error", () => undefined);
  if (when === "headers") {
    stream.close(http2.constants.NGHTTP2_CANCEL);
    return;
  }
  stream.end(frame(target.request));
  if (when === "first-data") await firstOf(stream, ["data", "close"]);
  stream.close(http2.constants.NGHTTP2_CANCEL);
  await firstOf(stream, ["close"]);
}

/** A grpc-js server stream of `target`, by its generic client. */
function grpcJsCall(
  client: grpc.Client,
  token: string,
  target: Target,
  deadline?: number,
): grpc.ClientReadableStream<MessageShape<DescMessage>> {
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${token}`);
  const call = client.makeServerStreamRequest(
    target.path,
    (bytes: Uint8Array) => Buffer.from(bytes),
    (bytes: Buffer) => fromBinary(target.output, bytes),
    target.request,
    metadata,
    deadline === undefined ? {} : { deadline },
  );
  call.on("error", () => undefined);
  return call;
}

/** Opens a grpc-js stream and cancels it at `when`: at once, after the first response, or after the first event. */
async function grpcJsCancel(client: grpc.Client, token: string, target: Target, when: "now" | "first" | "event"): Promise<void> {
  const call = grpcJsCall(client, token, target);
  if (when === "now") {
    call.cancel();
    return;
  }
  await new Promise<void>((resolve) => {
    const timer = setTimeout(finish, 10_000);
    function finish() {
      clearTimeout(timer);
      call.cancel();
      resolve();
    }
    call.on("data", (message: MessageShape<DescMessage>) => {
      if (when === "first" || isEvent(message)) finish();
    });
    call.on("error", finish);
    call.on("end", finish);
  });
}

/** A REST NDJSON stream over HTTP/1.1, its connection destroyed at `when`. */
async function restClose(baseUrl: string, token: string, target: Target, when: "sent" | "headers" | "first-line"): Promise<void> {
  const request = http.get(`${baseUrl}${target.restPath}`, { headers: { authorization: `Bearer ${token}` }, agent: false });
  request.on("error", () => undefined);
  if (when === "sent") {
    await firstOf(request, ["socket"], 1_000);
    request.destroy();
    return;
  }
  await new Promise<void>((resolve) => {
    const timer = setTimeout(finish, 10_000);
    function finish() {
      clearTimeout(timer);
      request.destroy();
      resolve();
    }
    request.on("response", (response) => {
      response.on("error", () => undefined);
      if (when === "headers") finish();
      else response.once("data", finish);
    });
    request.on("close", finish);
  });
}

/** The stream counters of the service: slots taken by the agent and in all, feeds and their listeners. */
function counters(env: TestEnv, agentId: string): { agent: number; total: number; feeds: number; listeners: number } {
  const { streams, feeds } = env.service.watch;
  return { agent: streams.open(agentId as AgentId), total: streams.total, feeds: feeds.size, listeners: feeds.listeners };
}

const codeOf = (error: { code: Code } | undefined): string => (error === undefined ? "ended without error" : Code[error.code]);

const zero = { agent: 0, total: 0, feeds: 0, listeners: 0 };

describe.each(backends)("stream release on %s", (backend) => {
  const env = useService(backend, {
    live: { heartbeatMs: 1_000, gapCheckMs: 200 },
    abuse: { ...noAbuseLimits, streamsPerAgent },
  });

  /** An agent, a partner and a talk with `history` events after the talk's creation. */
  async function setup(history: number): Promise<{ a: TestAgent; b: TestAgent; chatId: string; start: number; cursor: string }> {
    const customer = newCustomer();
    const [a, b] = await Promise.all([env.agent(customer, "Ann", { via: "grpc" }), env.agent(customer, "Bob", { via: "grpc" })]);
    const chatId = (await createTalk(a, [b])).id;
    const start = await lastSeqOf(a, chatId);
    // A cursor from before the history, so that WatchEvents replays it.
    const feed = new FeedWatcher(b);
    await feed.ready();
    const cursor = feed.cursor;
    await feed.abort();
    for (let i = 0; i < history; i++) await sendText(a, chatId, `history ${i}`);
    return { a, b, chatId, start, cursor };
  }

  it("releases the quota slot and the feeds of 1,000 streams cancelled in every phase", { timeout: 300_000 }, async () => {
    const { a, b, chatId, start, cursor } = await setup(120);
    const address = new URL(env.service.url).host;
    const all = targets(chatId, start, cursor);
    const opened: Record<string, number> = {};
    const count = (phase: string, n: number) => (opened[phase] = (opened[phase] ?? 0) + n);

    for (const target of [all.WatchTalk, all.WatchEvents]) {
      // Raw HTTP/2 resets: before the request body, right after it, after the first bytes.
      const session = http2.connect(env.service.url);
      session.on("error", () => undefined);
      await inBatches(70, (i) => rawReset(session, b.token, target, i % 2 === 0 ? "headers" : "body"));
      count("h2 reset before/after body", 70);
      await inBatches(30, () => rawReset(session, b.token, target, "first-data"));
      count("h2 reset after first data", 30);
      session.close();

      // grpc-js: cancel() at once, after the first heartbeat, during replay (after the first event).
      const client = new grpc.Client(address, grpc.credentials.createInsecure());
      await inBatches(70, () => grpcJsCancel(client, b.token, target, "now"));
      count("grpc-js cancel at once", 70);
      await inBatches(50, () => grpcJsCancel(client, b.token, target, "first"));
      count("grpc-js cancel after first heartbeat", 50);
      await inBatches(40, () => grpcJsCancel(client, b.token, target, "event"));
      count("grpc-js cancel during replay", 40);

      // Deadlines from 1 to 40 ms: they pass before, during and after the first read.
      await inBatches(60, async (i) => {
        const call = grpcJsCall(client, b.token, target, Date.now() + 1 + (i % 40));
        await firstOf(call, ["error", "end", "close"], 10_000);
      });
      count("grpc-js deadline", 60);

      // Live: streams past their replay get a new event, then are cancelled.
      const live = new Set<grpc.ClientReadableStream<MessageShape<DescMessage>>>();
      const liveTarget = targets(chatId, await lastSeqOf(a, chatId), "")[target.method];
      for (const [round, size] of [17, 17, 16].entries()) {
        const calls = range(1, size).map(() => grpcJsCall(client, b.token, liveTarget));
        for (const call of calls) live.add(call);
        await Promise.all(calls.map((call) => firstOf(call, ["data", "error"], 10_000)));
        const events = calls.map((call) => firstOf(call, ["data", "error"], 10_000));
        await sendText(a, chatId, `live ${round}`);
        await Promise.all(events);
        for (const call of calls) call.cancel();
      }
      count("grpc-js cancel during live", live.size);
      client.close();

      // REST NDJSON closed early: right after sending, after the headers, after the first line.
      const phases = ["sent", "headers", "first-line"] as const;
      await inBatches(60, (i) => restClose(env.service.url, b.token, target, phases[i % 3] ?? "sent"));
      count("REST closed early", 60);

      // The TCP connection destroyed under open gRPC streams (each on its own connection).
      await inBatches(30, async (i) => {
        const { hostname, port } = new URL(env.service.url);
        const socket = net.connect(Number(port), hostname);
        socket.on("error", () => undefined);
        const own = http2.connect(env.service.url, { createConnection: () => socket });
        own.on("error", () => undefined);
        const stream = own.request({
          ":method": "POST",
          ":path": target.path,
          "content-type": "application/grpc+proto",
          te: "trailers",
          authorization: `Bearer ${b.token}`,
        });
        stream.on("error", () => undefined);
        stream.end(frame(target.request));
        if (i % 2 === 1) await firstOf(stream, ["data", "close"]);
        socket.destroy();
        await firstOf(own, ["close"]);
      });
      count("TCP destroyed", 30);

      // Connect (connect-node's path): aborted at once and after the first response.
      const via = env.as(b, "connect");
      await inBatches(40, async (i) => {
        const watcher = target.method === "WatchTalk" ? new TalkWatcher(via, chatId, start) : new FeedWatcher(via, cursor);
        if (i % 2 === 1)
          await vi.waitFor(() => expect(watcher.responses.length > 0 || watcher.ended, "a first response").toBe(true), {
            timeout: 10_000,
            interval: 20,
          });
        await watcher.abort();
      });
      count("Connect aborted", 40);
    }

    const total = Object.values(opened).reduce((sum, n) => sum + n, 0);
    expect(total, JSON.stringify(opened)).toBe(1_000);

    // Every slot and every feed is given back.
    await expect.poll(() => counters(env, b.id), { timeout: 20_000, interval: 100 }).toEqual(zero);

    // The agent opens its 100 streams again; the 101st is refused; closing them frees all.
    const fresh = range(1, streamsPerAgent).map((i) => (i % 2 === 0 ? new TalkWatcher(b, chatId, 0) : new FeedWatcher(b)));
    try {
      await vi.waitFor(
        () =>
          expect(
            fresh.every((w) => w.responses.length > 0 || w.ended),
            "100 fresh streams",
          ).toBe(true),
        { timeout: 30_000, interval: 20 },
      );
      expect(fresh.filter((w) => w.ended).map((w) => w.error?.message)).toEqual([]);
      expect(counters(env, b.id).agent).toBe(streamsPerAgent);
      const extra = new FeedWatcher(b);
      expect(codeOf(await extra.waitEnd())).toBe("ResourceExhausted");
    } finally {
      await Promise.all(fresh.map((w) => w.abort()));
    }
    await expect.poll(() => counters(env, b.id), { timeout: 20_000, interval: 100 }).toEqual(zero);
    // The process still answers.
    await sendText(a, chatId, "still here");
  });
});

describe.each(backends)("stream release at shutdown on %s", (backend) => {
  const env = useService(backend, { live: { heartbeatMs: 1_000 }, abuse: { ...noAbuseLimits, streamsPerAgent } });

  it("releases every slot and feed when the service shuts down, whatever the streams were doing", async () => {
    const customer = newCustomer();
    const [a, b] = await Promise.all([env.agent(customer, "Ann", { via: "grpc" }), env.agent(customer, "Bob", { via: "grpc" })]);
    const chatId = (await createTalk(a, [b])).id;
    const start = await lastSeqOf(a, chatId);
    const { WatchTalk, WatchEvents } = targets(chatId, start, "");
    // Live streams, and raw ones whose response is never read.
    const watchers = [new TalkWatcher(b, chatId, start), new FeedWatcher(b), new TalkWatcher(env.as(b, "connect"), chatId, start)];
    const session = http2.connect(env.service.url);
    session.on("error", () => undefined);
    try {
      for (const target of [WatchTalk, WatchEvents]) {
        const stream = session.request({
          ":method": "POST",
          ":path": target.path,
          "content-type": "application/grpc+proto",
          te: "trailers",
          authorization: `Bearer ${b.token}`,
        });
        stream.on("error", () => undefined);
        stream.pause();
        stream.end(frame(target.request));
      }
      await vi.waitFor(() => expect(counters(env, b.id).agent === 5, JSON.stringify(counters(env, b.id))).toBe(true), {
        timeout: 10_000,
        interval: 20,
      });
      await env.closeService();
      expect(counters(env, b.id)).toEqual(zero);
      for (const watcher of watchers) expect(codeOf(await watcher.waitEnd())).toBe("Unavailable");
    } finally {
      session.destroy();
      await Promise.all(watchers.map((w) => w.abort()));
    }
  });
});

describe.each(backends)("REST NDJSON backpressure on %s", (backend) => {
  const maxQueued = 50;
  const env = useService(backend, { live: { streamMaxQueued: maxQueued, heartbeatMs: 60_000, gapCheckMs: 200 } });

  it("a reader that stops reading is cut off with a final RESOURCE_EXHAUSTED line, and its slot and feed are released", {
    timeout: 60_000,
  }, async () => {
    const customer = newCustomer();
    const [a, b] = await Promise.all([env.agent(customer, "Ann", { via: "grpc" }), env.agent(customer, "Bob", { via: "grpc" })]);
    const chatId = (await createTalk(a, [b])).id;
    const start = await lastSeqOf(a, chatId);
    // Over HTTP/2 the client's flow-control window is the socket's buffer: a paused reader
    // stops the server's writes after 64 KiB.
    const session = http2.connect(env.service.url);
    session.on("error", () => undefined);
    try {
      const stream = session.request({ ":path": `/v1.0/talks/${chatId}/events?after_seq=${start}`, authorization: `Bearer ${b.token}` });
      stream.on("error", () => undefined);
      let status: number | undefined;
      stream.on("response", (headers) => (status = Number(headers[":status"])));
      stream.pause();
      await vi.waitFor(() => expect(counters(env, b.id).agent === 1, "the stream to open").toBe(true), { timeout: 10_000, interval: 20 });
      await sendText(a, chatId, "first");
      await vi.waitFor(() => expect(status !== undefined, "the response headers").toBe(true), { timeout: 10_000, interval: 20 });
      expect(status).toBe(200);
      const text = "n".repeat(4096);
      const total = 300;
      for (let i = 0; i < total; i++) await sendText(i % 2 === 0 ? a : b, chatId, `${i} ${text}`);
      // Cut off while still not reading: what it held is released at once.
      await expect.poll(() => counters(env, b.id), { timeout: 15_000, interval: 100 }).toEqual(zero);

      let body = "";
      stream.setEncoding("utf8");
      stream.on("data", (chunk: string) => (body += chunk));
      const ended = firstOf(stream, ["end", "close"], 15_000);
      stream.resume();
      await ended;
      const lines = body
        .trim()
        .split("\n")
        .map((line) => JSON.parse(line) as { event?: { seq?: string }; error?: { code?: string } });
      expect(lines.at(-1)?.error?.code, JSON.stringify(lines.at(-1)).slice(0, 200)).toBe("resource_exhausted");
      const seqs = lines.flatMap((line) => (line.event?.seq === undefined ? [] : [Number(line.event.seq)]));
      expect(seqs).toEqual(range(start + 1, start + seqs.length));
      expect(seqs.length).toBeLessThan(total);
    } finally {
      session.destroy();
    }
    // The process still answers, and the reader resumes from its last seq.
    await sendText(a, chatId, "after");
  });
});

describe("a stream's scope", () => {
  it("releases what it holds when its signal aborts, even while its generator is never resumed", async () => {
    const quota = new StreamQuota(1);
    const call = new AbortController();
    const agentId = "a" as AgentId;
    async function* stream(): AsyncGenerator<number> {
      const scope = new WatchScope([call.signal]);
      try {
        scope.hold(quota.acquire({ agentId, customerId: "c" as CustomerId, end: (reason) => scope.end(reason) }));
        yield 1;
        yield 2;
      } finally {
        scope.end(new Canceled("done"));
      }
    }
    // Pulled once, then abandoned at its first yield: its finally never runs.
    const abandoned = stream();
    await abandoned.next();
    expect(quota.open(agentId)).toBe(1);
    expect(() => quota.acquire({ agentId, customerId: "c" as CustomerId, end: () => undefined })).toThrow(/at most 1 open streams/);
    call.abort();
    expect(quota.open(agentId)).toBe(0);
    expect(quota.total).toBe(0);
  });

  it("ends at once, and waits for nothing, when the call was cancelled before the stream started", async () => {
    const quota = new StreamQuota(1);
    const call = new AbortController();
    call.abort();
    const scope = new WatchScope([call.signal]);
    expect(scope.ended).toBe(true);
    await expect(scope.race(new Promise(() => undefined))).rejects.toThrow("the stream was cancelled");
    expect(quota.total).toBe(0);
  });
});
