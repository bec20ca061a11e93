/**
 * The client package's resume after a lag cut-off: a consumer that stops pulling from its
 * WatchTalk stream (gRPC over HTTP/2) is cut off by the service with RESOURCE_EXHAUSTED (the stream's queue is
 * small here); once it pulls again the client reconnects after the last seq it delivered, and
 * the consumer gets every event once, in order.
 */
import { Http2SessionManager, createGrpcTransport } from "@connectrpc/connect-node";
import { describe, expect, it } from "vitest";
import { Code, createTalkhubClient } from "../../clients/ts/src/index.js";
import { createTalk, newCustomer, sendText, useService } from "../support/harness.js";

const maxQueued = 20;

describe("client resume after a lag cut-off", () => {
  const env = useService("pglite", { live: { streamMaxQueued: maxQueued, heartbeatMs: 60_000, gapCheckMs: 200 } });

  it("a consumer that stalls is cut off, resumes, and sees every event once", async () => {
    const customer = newCustomer();
    const [a, b] = await Promise.all([env.agent(customer, "Ann"), env.agent(customer, "Bob")]);
    const chatId = (await createTalk(a, [b])).id;
    // gRPC over HTTP/2 (connect-node): a stream not read stops the server by flow control. (Over
    // fetch, the HTTP/1.1 response is buffered by the client, and the server never sees the stall.)
    const sessionManager = new Http2SessionManager(env.url);
    const client = createTalkhubClient({
      baseUrl: env.url,
      token: b.token,
      transport: (interceptors) => createGrpcTransport({ baseUrl: env.url, interceptors, sessionManager }),
      watch: { backoff: { initialMs: 20, maxMs: 200 } },
    });

    const reconnectedFrom: Code[] = [];
    const stop = new AbortController();
    const stream = client.watchTalk(
      { chatId },
      { signal: stop.signal, onStatus: (s, e) => s === "reconnecting" && e !== undefined && reconnectedFrom.push(e.code) },
    );
    let release: () => void = () => undefined;
    const stalled = new Promise<void>((resolve) => (release = resolve));
    const total = 400;
    const text = "x".repeat(9_000);
    const seqs: number[] = [];
    let last = Number.POSITIVE_INFINITY;
    const consumer = (async () => {
      for await (const response of stream) {
        if (response.kind.case !== "event") continue;
        seqs.push(Number(response.kind.value.seq));
        // Stalls after the first message, with the stream open, until the sends are done.
        if (
          response.kind.value.type === "message_created" &&
          seqs.length > 0 &&
          response.kind.value.payload.case === "messageCreated" &&
          response.kind.value.payload.value.text === "first"
        )
          await stalled;
        if (seqs.at(-1) === last) break;
      }
    })();
    try {
      await sendText(a, chatId, "first");
      for (let i = 0; i < total; i++) await sendText(i % 2 === 0 ? a : b, chatId, `${i} ${text}`);
      last = Number((await a.talks.getTalk({ id: chatId })).talk?.lastSeq ?? 0n);
      release();
      await consumer;
    } finally {
      stop.abort();
      sessionManager.abort();
    }
    expect(reconnectedFrom, "the errors the stream resumed from").toContain(Code.ResourceExhausted);
    expect(seqs).toEqual(Array.from({ length: last }, (_, i) => i + 1));
    expect(stream.stats.duplicatesDropped).toBe(0);
  }, 120_000);
});
