/**
 * Limits of live streams: a consumer that stops reading is cut off with RESOURCE_EXHAUSTED
 * (with bounded server memory) and can resume; shutting the service down ends open streams
 * with UNAVAILABLE.
 */
import { describe, expect, it, vi } from "vitest";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { WatchTalkRequestSchema, WatchTalkResponseSchema } from "../../gen/talk/v1/talk_service_pb.js";
import { Code, TestEnv, createTalk, liveBackends, must, newCustomer, sendText, useService } from "../support/harness.js";
import type { TestAgent } from "../support/harness.js";
import {
  FeedWatcher,
  RawConnectStream,
  TalkWatcher,
  WsClient,
  expectContiguous,
  garbageCollector,
  lastSeqOf,
  range,
} from "../support/live-helpers.js";

const backends = await liveBackends();

const maxQueued = 50;

describe.each(backends)("slow consumers on %s", (backend) => {
  const env = useService(backend, { live: { streamMaxQueued: maxQueued, heartbeatMs: 60_000, gapCheckMs: 200 } });

  async function pair(): Promise<{ a: TestAgent; b: TestAgent; chatId: string }> {
    const customer = newCustomer();
    const [a, b] = await Promise.all([env.agent(customer, "Ann"), env.agent(customer, "Bob")]);
    return { a, b, chatId: (await createTalk(a, [b])).id };
  }

  it("cuts off a WatchTalk stream that is not read with RESOURCE_EXHAUSTED, keeps memory bounded, and lets it resume", async () => {
    const { a, b, chatId } = await pair();
    const start = await lastSeqOf(a, chatId);
    const gc = garbageCollector();
    gc?.();
    const heapBefore = process.memoryUsage().heapUsed;

    // A Connect stream over raw HTTP/2 whose body the test does not read: flow control then
    // stops the server's writes, and the server's queue for the stream fills up.
    const raw = new RawConnectStream(env.service.url, b.token, "/talk.v1.TalkService/WatchTalk", {
      chat_id: chatId,
      after_seq: String(start),
    });
    raw.pause();
    try {
      // The first event brings the response headers: the stream is attached.
      await sendText(a, chatId, "first");
      await vi.waitFor(() => expect(raw.status !== undefined || raw.failure !== undefined, "the response headers").toBe(true), {
        timeout: 5_000,
        interval: 20,
      });
      expect(raw.status).toBe(200);
      const text = "x".repeat(4096);
      const total = 400;
      // 4 senders in parallel, 100 messages each.
      await Promise.all(
        range(0, 3).map(async (s) => {
          for (let i = 0; i < total / 4; i++) await sendText(s % 2 === 0 ? a : b, chatId, `${s}-${i} ${text}`);
        }),
      );
      const last = start + 1 + total;
      expect(await lastSeqOf(a, chatId)).toBe(last);
      gc?.();
      const heapGrowth = process.memoryUsage().heapUsed - heapBefore;

      // Now read: what was in flight, then the end of stream with resource_exhausted.
      raw.read();
      await vi.waitFor(
        () => expect(raw.endStream !== undefined || raw.ended, `the end of the stream (${raw.envelopes.length} envelopes)`).toBe(true),
        { timeout: 15_000, interval: 20 },
      );
      const endStream = must(raw.endStream, `end-stream message (ended=${raw.ended}, failure=${String(raw.failure)})`);
      expect((endStream["error"] as { code?: string } | undefined)?.code, JSON.stringify(endStream).slice(0, 300)).toBe(
        "resource_exhausted",
      );
      // Heartbeats (the first response is one) carry no event.
      const seqs = raw.messages.filter((m) => m["event"] !== undefined).map((m) => Number((m["event"] as { seq?: string }).seq));
      // What did arrive is a contiguous prefix, well short of everything: the server was not drained.
      expect(seqs).toEqual(range(start + 1, start + seqs.length));
      expect(seqs.length).toBeLessThan(total);
      expect(
        heapGrowth,
        `heap grew by ${(heapGrowth / 1e6).toFixed(1)} MB (gc ${gc === undefined ? "unavailable" : "forced"})`,
      ).toBeLessThan(30e6);

      // Resuming from the last seq received works and brings the rest.
      const resumedFrom = start + seqs.length;
      const resumed = new TalkWatcher(b, chatId, resumedFrom);
      try {
        await resumed.waitSeq(last, 15_000);
        expectContiguous(resumed.events, resumedFrom + 1, last, "resumed");
      } finally {
        await resumed.abort();
      }
    } finally {
      raw.close();
    }
  });

  it("cuts off an unread WatchTalk stream over gRPC too (grpc-status 8 in the trailers)", async () => {
    const { a, b, chatId } = await pair();
    const start = await lastSeqOf(a, chatId);
    const request = toBinary(WatchTalkRequestSchema, create(WatchTalkRequestSchema, { chatId, afterSeq: BigInt(start) }));
    const raw = new RawConnectStream(env.service.url, b.token, "/talk.v1.TalkService/WatchTalk", request, "grpc");
    raw.pause();
    try {
      // The first event brings the response headers: the stream is attached.
      await sendText(a, chatId, "first");
      await vi.waitFor(() => expect(raw.status !== undefined || raw.failure !== undefined, "the response headers").toBe(true), {
        timeout: 5_000,
        interval: 20,
      });
      expect(raw.status).toBe(200);
      const text = "y".repeat(4096);
      for (let i = 0; i < 300; i++) await sendText(i % 2 === 0 ? a : b, chatId, `${i} ${text}`);
      expect(await lastSeqOf(a, chatId)).toBe(start + 301);
      raw.read();
      await vi.waitFor(
        () => expect(raw.trailers !== undefined || raw.ended, `the trailers (${raw.envelopes.length} envelopes)`).toBe(true),
        { timeout: 15_000, interval: 20 },
      );
      expect(raw.trailers?.["grpc-status"], JSON.stringify(raw.trailers)).toBe(String(Code.ResourceExhausted));
      const seqs = raw.messageBytes.flatMap((bytes) => {
        const response = fromBinary(WatchTalkResponseSchema, bytes);
        return response.kind.case === "event" ? [Number(response.kind.value.seq)] : [];
      });
      expect(seqs).toEqual(range(start + 1, start + seqs.length));
      expect(seqs.length).toBeLessThan(301);
    } finally {
      raw.close();
    }
  });

  it("cuts off a WatchEvents feed that is not read, too", async () => {
    const { a, b, chatId } = await pair();
    const raw = new RawConnectStream(env.service.url, b.token, "/talk.v1.TalkService/WatchEvents", { cursor: "" });
    raw.pause();
    try {
      await vi.waitFor(() => expect(raw.status !== undefined, "the response headers").toBe(true), { timeout: 5_000, interval: 20 });
      // Let the feed attach before writing (its first response is the starting heartbeat,
      // which sits unread in the flow-control window).
      const probe = new FeedWatcher(b);
      await probe.ready();
      await probe.abort();
      const text = "z".repeat(4096);
      for (let i = 0; i < 300; i++) await sendText(a, chatId, `${i} ${text}`);
      raw.read();
      await vi.waitFor(() => expect(raw.endStream !== undefined || raw.ended, "the end of the feed").toBe(true), {
        timeout: 15_000,
        interval: 20,
      });
      const endStream = must(raw.endStream, "end-stream message");
      expect((endStream["error"] as { code?: string } | undefined)?.code).toBe("resource_exhausted");
      expect(raw.messages.filter((m) => m["event"] !== undefined).length).toBeLessThan(300);
    } finally {
      raw.close();
    }
  });
});

describe.each(backends)("shutdown on %s", (backend) => {
  it("ends open WatchTalk and WatchEvents streams with UNAVAILABLE, and closes WebSockets with 1012, when the service closes", async () => {
    const own = new TestEnv(backend, { live: { heartbeatMs: 60_000 } });
    await own.start();
    try {
      const customer = newCustomer();
      const [a, b] = await Promise.all([own.agent(customer, "Ann", { via: "connect" }), own.agent(customer, "Bob", { via: "grpc" })]);
      const chatId = (await createTalk(a, [b])).id;
      const start = await lastSeqOf(a, chatId);
      const watchers = [new TalkWatcher(a, chatId, start), new TalkWatcher(b, chatId, start)];
      const feed = new FeedWatcher(a);
      await feed.ready();
      const ws = new WsClient(`ws://127.0.0.1:${own.service.port}/v1.0/ws?token=${encodeURIComponent(a.token)}`);
      await ws.opened;
      ws.send({ type: "subscribe", topics: [`agent_id:${a.id}:talk_chat:${chatId}`] });
      await ws.waitFrame((f) => f["type"] === "ack");
      const wsClosed = new Promise<number>((resolve) => ws.socket.once("close", (code: number) => resolve(code)));
      await sendText(a, chatId, "before shutdown");
      for (const w of watchers) await w.waitSeq(start + 1);
      await feed.waitTalkSeq(chatId, start + 1);

      await own.closeService();
      expect(await wsClosed).toBe(1012);
      for (const w of watchers) {
        const error = await w.expectEnd(Code.Unavailable);
        expect(error.message.length).toBeGreaterThan(0);
      }
      await feed.expectEnd(Code.Unavailable);
    } finally {
      await own.stop();
    }
  });
});
