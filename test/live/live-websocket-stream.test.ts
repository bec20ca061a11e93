/**
 * The WebSocket as a stream like the others: each subscription is a WatchTalk or WatchEvents
 * call through the RPC interceptors (counted in talkhub_streams_open, logged, errors mapped
 * once); heartbeat frames and pings at the heartbeat interval, and sockets that answer no ping
 * closed; the "*" topic resumes from a frame's cursor; after_seq as a number or a proto3 JSON
 * int64 string; a subscription is validated before it is acknowledged.
 */
import { describe, expect, it, vi } from "vitest";
import WebSocket from "ws";
import { createTalk, liveBackends, must, newCustomer, sendText, useService } from "../support/harness.js";
import type { TestAgent, TestEnv } from "../support/harness.js";
import { WsClient, lastSeqOf, range } from "../support/live-helpers.js";
import { metricValue, rest } from "../support/rest-helpers.js";

const backends = await liveBackends();

type Frame = Record<string, unknown>;

const seqOf = (frame: Frame): number => Number(frame["seq"]);
const heartbeatMs = 500;
const watchTalkMethod = { method: "talk.v1.TalkService/WatchTalk" };
const watchEventsMethod = { method: "talk.v1.TalkService/WatchEvents" };

async function pair(env: TestEnv): Promise<{ a: TestAgent; b: TestAgent }> {
  const customer = newCustomer();
  const [a, b] = await Promise.all([env.agent(customer, "Ann"), env.agent(customer, "Bob")]);
  return { a, b };
}

const wsUrlOf = (env: TestEnv, token: string): string => `ws://127.0.0.1:${env.service.port}/v1.0/ws?token=${encodeURIComponent(token)}`;

async function openOn(env: TestEnv, agent: TestAgent): Promise<WsClient> {
  const client = new WsClient(wsUrlOf(env, agent.token));
  await client.opened;
  return client;
}

/** Subscribes and waits for the ack naming the topics. */
async function subscribe(client: WsClient, topics: string[], extra: Frame = {}): Promise<void> {
  const from = client.frames.length;
  client.send({ type: "subscribe", topics, ...extra });
  const ack = await client.waitFrame((f) => f["type"] === "ack" || f["type"] === "error", from);
  expect(ack).toMatchObject({ type: "ack", action: "subscribe", topics });
}

/**
 * The frames a request gets before the answer to a later sentinel (frames are answered in
 * order, so everything the request was answered with is among them).
 */
async function answersTo(client: WsClient, frame: unknown): Promise<Frame[]> {
  const from = client.frames.length;
  const sentinel = `sentinel-${Math.random()}`;
  client.send(frame);
  client.send({ type: "unsubscribe", topics: [sentinel] });
  const ack = await client.waitFrame((f) => f["type"] === "ack" && JSON.stringify(f["topics"]) === JSON.stringify([sentinel]), from);
  return client.frames.slice(from, client.frames.indexOf(ack)).filter((f) => f["type"] === "ack" || f["type"] === "error");
}

async function scrape(env: TestEnv): Promise<string> {
  const reply = await rest(must(env.service.operatorUrl, "operator listener"), "GET", "/metrics");
  expect(reply.status).toBe(200);
  return reply.text;
}

describe.each(backends)("WebSocket streams on %s", (backend) => {
  const env = useService(backend, { live: { heartbeatMs, gapCheckMs: 200, membershipCheckMs: 600_000 } });

  it("opens each subscription as a WatchTalk or WatchEvents call: counted in talkhub_streams_open, refusals counted and mapped by the interceptors", async () => {
    const { a, b } = await pair(env);
    const mine = (await createTalk(a, [b])).id;
    const notMine = (await createTalk(b, [])).id;
    const talkTopic = `agent_id:${a.id}:talk_chat:${mine}`;
    const allTopic = `agent_id:${a.id}:talk_chat:*`;
    const before = await scrape(env);
    const base = {
      talkOpen: metricValue(before, "talkhub_streams_open", watchTalkMethod),
      eventsOpen: metricValue(before, "talkhub_streams_open", watchEventsMethod),
      talkNotFound: metricValue(before, "talkhub_rpc_requests_total", { ...watchTalkMethod, code: "not_found" }),
    };
    const client = await openOn(env, a);
    try {
      await subscribe(client, [talkTopic, allTopic]);
      await expect
        .poll(async () => metricValue(await scrape(env), "talkhub_streams_open", watchTalkMethod), {
          timeout: 10_000,
          message: "the talk topic counted as a WatchTalk stream",
        })
        .toBe(base.talkOpen + 1);
      await expect
        .poll(async () => metricValue(await scrape(env), "talkhub_streams_open", watchEventsMethod), {
          timeout: 10_000,
          message: "the * topic counted as a WatchEvents stream",
        })
        .toBe(base.eventsOpen + 1);

      const from = client.frames.length;
      client.send({ type: "unsubscribe", topics: [talkTopic] });
      await client.waitFrame((f) => f["type"] === "ack", from);
      await expect
        .poll(async () => metricValue(await scrape(env), "talkhub_streams_open", watchTalkMethod), {
          timeout: 10_000,
          message: "an unsubscribed topic uncounted",
        })
        .toBe(base.talkOpen);

      // A refused subscription is a refused WatchTalk call: counted with its code, and its
      // error frame carries the call's request id, as every RPC error does.
      const refused = `agent_id:${a.id}:talk_chat:${notMine}`;
      const answers = await answersTo(client, { type: "subscribe", topics: [refused], after_seq: 0 });
      expect(answers).toEqual([expect.objectContaining({ type: "error", code: "not_found", topic: refused })]);
      expect(answers[0]?.["request_id"]).toEqual(expect.any(String));
      await expect
        .poll(async () => metricValue(await scrape(env), "talkhub_rpc_requests_total", { ...watchTalkMethod, code: "not_found" }), {
          timeout: 10_000,
        })
        .toBe(base.talkNotFound + 1);
    } finally {
      client.close();
    }
    await expect
      .poll(async () => metricValue(await scrape(env), "talkhub_streams_open", watchEventsMethod), {
        timeout: 10_000,
        message: "a closed socket's topics uncounted",
      })
      .toBe(base.eventsOpen);
  });

  it("sends heartbeat frames on idle topics and pings at the heartbeat interval", async () => {
    const { a, b } = await pair(env);
    const chatId = (await createTalk(a, [b])).id;
    const last = await lastSeqOf(a, chatId);
    const talkTopic = `agent_id:${a.id}:talk_chat:${chatId}`;
    const allTopic = `agent_id:${a.id}:talk_chat:*`;
    const client = await openOn(env, a);
    let pings = 0;
    client.socket.on("ping", () => (pings += 1));
    try {
      await subscribe(client, [talkTopic, allTopic]);
      const heartbeats = (topic: string) => client.ofType("heartbeat").filter((f) => f["topic"] === topic);
      await vi.waitFor(
        () => {
          expect(pings, "pings").toBeGreaterThanOrEqual(3);
          expect(heartbeats(talkTopic).length, "heartbeats of the talk topic").toBeGreaterThanOrEqual(3);
          expect(heartbeats(allTopic).length, "heartbeats of the * topic").toBeGreaterThanOrEqual(3);
        },
        { timeout: 20 * heartbeatMs, interval: 20 },
      );
      // A talk topic's heartbeat says how far the topic is; the * topic's carries its cursor.
      const talkBeat = must(heartbeats(talkTopic).at(-1));
      expect(talkBeat).toMatchObject({ type: "heartbeat", topic: talkTopic, heartbeat: { last_seq: last } });
      expect((talkBeat["heartbeat"] as Frame)["tm_create"]).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}$/);
      const allBeat = must(heartbeats(allTopic).at(-1));
      expect(allBeat).toMatchObject({ type: "heartbeat", topic: allTopic });
      expect(allBeat["cursor"]).toEqual(expect.any(String));
      expect(String(allBeat["cursor"]).length).toBeGreaterThan(0);
      // Heartbeats are not events (no seq), and a client that answers pings stays connected.
      expect(client.events()).toEqual([]);
      expect(client.closed).toBe(false);
    } finally {
      client.close();
    }
  });

  it("closes a socket that answers no ping, and ends its subscriptions", async () => {
    const { a, b } = await pair(env);
    const chatId = (await createTalk(a, [b])).id;
    const base = metricValue(await scrape(env), "talkhub_streams_open", watchTalkMethod);
    // A client that has stopped answering pings (a dead peer, a stuck proxy).
    const socket = new WebSocket(wsUrlOf(env, a.token), { autoPong: false });
    let pings = 0;
    let closedAfter: number | undefined;
    socket.on("ping", () => (pings += 1));
    socket.on("error", () => undefined);
    const acked = new Promise<void>((resolve) =>
      socket.on("message", (data) => (JSON.parse(data.toString()) as Frame)["type"] === "ack" && resolve()),
    );
    await new Promise<void>((resolve, reject) => {
      socket.once("open", () => resolve());
      socket.once("error", reject);
    });
    const opened = performance.now();
    socket.on("close", () => (closedAfter = performance.now() - opened));
    try {
      socket.send(JSON.stringify({ type: "subscribe", topics: [`agent_id:${a.id}:talk_chat:${chatId}`] }));
      await acked;
      await vi.waitFor(() => expect(closedAfter, "the server to close the silent socket").toBeDefined(), {
        timeout: 20 * heartbeatMs,
        interval: 20,
      });
      // A socket is cut once it has answered no ping for two intervals (checked at each ping).
      expect(pings).toBeGreaterThanOrEqual(1);
      expect(must(closedAfter)).toBeGreaterThanOrEqual(2 * heartbeatMs - 50);
      await expect
        .poll(async () => metricValue(await scrape(env), "talkhub_streams_open", watchTalkMethod), {
          timeout: 10_000,
          message: "its subscription ended",
        })
        .toBe(base);
    } finally {
      socket.terminate();
    }
  });

  it("resumes the * topic from a frame's cursor: exactly the events missed while away, in order", async () => {
    const { a, b } = await pair(env);
    const first = (await createTalk(a, [b])).id;
    const second = (await createTalk(b, [a])).id;
    const allTopic = `agent_id:${a.id}:talk_chat:*`;
    const secondAtStart = await lastSeqOf(b, second);
    const client = await openOn(env, a);
    let cursor: string;
    let seen: number;
    try {
      await subscribe(client, [allTopic]);
      const before = await sendText(b, first, "before the drop");
      const frame = await client.waitFrame(
        (f) => f["chat_id"] === first && (f["message_created"] as Frame | undefined)?.["id"] === before.id,
      );
      expect(frame["topic"]).toBe(allTopic);
      cursor = String(frame["cursor"]);
      expect(cursor.length).toBeGreaterThan(0);
      seen = seqOf(frame);
    } finally {
      client.close();
    }
    await vi.waitFor(() => expect(client.closed).toBe(true));
    // While the client is away, both talks move on.
    for (let i = 0; i < 3; i++) {
      await sendText(b, first, `missed in the first ${i}`);
      await sendText(a, second, `missed in the second ${i}`);
    }
    const firstLast = await lastSeqOf(a, first);
    const secondLast = await lastSeqOf(a, second);
    const again = await openOn(env, a);
    try {
      await subscribe(again, [allTopic], { cursor });
      const of = (chatId: string) => again.events(allTopic).filter((f) => f["chat_id"] === chatId);
      await vi.waitFor(
        () => {
          expect(
            of(first).some((f) => seqOf(f) === firstLast),
            "the first talk's missed events",
          ).toBe(true);
          expect(
            of(second).some((f) => seqOf(f) === secondLast),
            "the second talk's missed events",
          ).toBe(true);
        },
        { timeout: 10_000, interval: 20 },
      );
      expect(of(first).map(seqOf)).toEqual(range(seen + 1, firstLast));
      expect(of(second).map(seqOf)).toEqual(range(secondAtStart + 1, secondLast));
      // Each frame carries the cursor to resume after it.
      for (const frame of again.events(allTopic)) expect(frame["cursor"]).toEqual(expect.any(String));
      expect(again.ofType("error")).toEqual([]);
    } finally {
      again.close();
    }
  });

  it("takes after_seq as a number or as a proto3 JSON int64 string, and refuses anything else", async () => {
    const { a, b } = await pair(env);
    const chatId = (await createTalk(a, [b])).id;
    await sendText(a, chatId, "early");
    const last = await lastSeqOf(a, chatId);
    const topic = `agent_id:${a.id}:talk_chat:${chatId}`;
    for (const afterSeq of [2, "2"]) {
      const client = await openOn(env, a);
      try {
        await subscribe(client, [topic], { after_seq: afterSeq });
        await vi.waitFor(
          () =>
            expect(client.events(topic).length, `frames from seq 3 (after_seq ${JSON.stringify(afterSeq)})`).toBeGreaterThanOrEqual(
              last - 2,
            ),
          { timeout: 10_000, interval: 20 },
        );
        expect(client.events(topic).map(seqOf)).toEqual(range(3, last));
      } finally {
        client.close();
      }
    }
    const client = await openOn(env, a);
    try {
      for (const afterSeq of ["x", "", " 2", "2 ", "1.5", "0x2", "1e2", "+2", "-1", -1, 1.5, true, {}, [2], "99999999999999999999999"]) {
        const answers = await answersTo(client, { type: "subscribe", topics: [topic], after_seq: afterSeq });
        expect(answers, `after_seq ${JSON.stringify(afterSeq)}`).toEqual([
          expect.objectContaining({ type: "error", code: "invalid_argument" }),
        ]);
        expect(String(answers[0]?.["message"]), `after_seq ${JSON.stringify(afterSeq)}`).toContain("after_seq");
      }
      expect(client.events()).toEqual([]);
    } finally {
      client.close();
    }
  });

  it("validates a subscription before acknowledging it: a bad position gets an error frame and no ack", async () => {
    const { a, b } = await pair(env);
    const chatId = (await createTalk(a, [b])).id;
    const last = await lastSeqOf(a, chatId);
    const topic = `agent_id:${a.id}:talk_chat:${chatId}`;
    const allTopic = `agent_id:${a.id}:talk_chat:*`;
    const client = await openOn(env, a);
    try {
      const ahead = await answersTo(client, { type: "subscribe", topics: [topic], after_seq: last + 5 });
      expect(ahead).toEqual([expect.objectContaining({ type: "error", code: "out_of_range", topic })]);
      const badCursor = await answersTo(client, { type: "subscribe", topics: [allTopic], cursor: "not a cursor" });
      expect(badCursor).toEqual([expect.objectContaining({ type: "error", code: "invalid_argument", topic: allTopic })]);
      // A position is for one kind of topic: after_seq for a talk, cursor for "*".
      const seqOnAll = await answersTo(client, { type: "subscribe", topics: [allTopic], after_seq: 1 });
      expect(seqOnAll).toEqual([expect.objectContaining({ type: "error", code: "invalid_argument", topic: allTopic })]);
      const cursorOnTalk = await answersTo(client, { type: "subscribe", topics: [topic], cursor: "x" });
      expect(cursorOnTalk).toEqual([expect.objectContaining({ type: "error", code: "invalid_argument", topic })]);
      // Nothing was subscribed: unsubscribing acknowledges, a new subscribe works from the present.
      await subscribe(client, [topic]);
      const message = await sendText(b, chatId, "after the refusals");
      const frame = await client.waitFrame((f) => f["topic"] === topic && f["type"] === "message_created");
      expect(frame["message_created"]).toMatchObject({ id: message.id });
      expect(client.events(topic).map(seqOf)).toEqual([last + 1]);
    } finally {
      client.close();
    }
  });
});
