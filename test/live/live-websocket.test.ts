/**
 * The WebSocket at /v1.0/ws: the subscribe/unsubscribe protocol, event frames in seq order,
 * the "*" topic, error frames that leave the connection open, and authentication on upgrade.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { describe, expect, it, vi } from "vitest";
import { mintToken } from "../../src/auth/tokens.js";
import { createTalk, liveBackends, must, newCustomer, sendText, useService } from "../support/harness.js";
import type { TestAgent, TestEnv } from "../support/harness.js";
import { WsClient, lastSeqOf, range, upgradeStatus } from "../support/live-helpers.js";
import { rest } from "../support/rest-helpers.js";

const backends = await liveBackends();

type Frame = Record<string, unknown>;

const seqOf = (frame: Frame): number => Number(frame["seq"]);

/** `count` distinct topics that all name one talk of the agent (scope, resource and letter case vary). */
function topicSpellings(agent: TestAgent, chatId: string, count: number): string[] {
  const ids = `${agent.id}|${chatId}`;
  const letters = [...ids].flatMap((c, i) => (/[a-f]/.test(c) ? [i] : []));
  const topics = new Set<string>();
  for (let n = 0; topics.size < count && n < 100_000; n++) {
    const chars = [...ids];
    letters.forEach((position, bit) => {
      if ((Math.floor(n / 3) >> bit) & 1) chars[position] = chars[position]!.toUpperCase();
    });
    const [agentId, talkId] = chars.join("").split("|");
    topics.add(`agent_id:${agentId}:${["talk_chat", "talk", "talk_chats"][n % 3]}:${talkId}`);
  }
  return [...topics];
}

/** Records how a WebSocket client's connection closes. */
function closeOf(client: WsClient): { code: number | undefined; reason: string } {
  const seen: { code: number | undefined; reason: string } = { code: undefined, reason: "" };
  client.socket.once("close", (code: number, reason: Buffer) => {
    seen.code = code;
    seen.reason = reason.toString("utf8");
  });
  return seen;
}

async function trio(env: TestEnv): Promise<{ a: TestAgent; b: TestAgent; c: TestAgent; customer: string }> {
  const customer = newCustomer();
  const [a, b, c] = await Promise.all([env.agent(customer, "Ann"), env.agent(customer, "Bob"), env.agent(customer, "Cy")]);
  return { a, b, c, customer };
}

/** The URL of a service's WebSocket for a token. */
const wsUrlOf = (env: TestEnv, token: string, path = "/v1.0/ws") =>
  `ws://127.0.0.1:${env.service.port}${path}?token=${encodeURIComponent(token)}`;

/** Opens a socket as an agent and waits until it is open. */
async function openOn(env: TestEnv, agent: TestAgent, path?: string): Promise<WsClient> {
  const client = new WsClient(wsUrlOf(env, agent.token, path));
  await client.opened;
  return client;
}

/** Subscribes and waits for the ack naming the topics. */
async function subscribe(client: WsClient, topics: string[], extra: Frame = {}): Promise<void> {
  const from = client.frames.length;
  client.send({ type: "subscribe", topics, ...extra });
  const ack = await client.waitFrame((f) => f["type"] === "ack", from);
  expect(ack).toMatchObject({ type: "ack", action: "subscribe", topics });
}

/**
 * How long a talk the agent joins may take to reach its "*" topic. The membership re-check runs
 * every 10 minutes in the suite below, so only the bus's join message can bring it this fast.
 */
const joinBound = 3_000;

describe.each(backends)("WebSocket on %s", (backend) => {
  const env = useService(backend, { live: { heartbeatMs: 500, gapCheckMs: 200, membershipCheckMs: 600_000 } });

  const wsUrl = (token: string, path?: string) => wsUrlOf(env, token, path);
  const open = (agent: TestAgent, path?: string) => openOn(env, agent, path);

  it("streams message, reaction and participant events of a talk topic as frames in seq order", async () => {
    const { a, b, c } = await trio(env);
    const chatId = (await createTalk(a, [b])).id;
    const start = await lastSeqOf(a, chatId);
    const topic = `agent_id:${a.id}:talk_chat:${chatId}`;
    const client = await open(a);
    try {
      await subscribe(client, [topic]);
      const message = await sendText(b, chatId, "over the socket");
      await b.messages.updateMessage({ id: message.id, text: "edited over the socket" });
      await a.messages.addReaction({ messageId: message.id, emoji: "wave" });
      await a.messages.removeReaction({ messageId: message.id, emoji: "wave" });
      await b.messages.deleteMessage({ id: message.id });
      const added = must((await a.talks.addParticipant({ chatId, agentId: c.id })).participant);
      await a.talks.removeParticipant({ chatId, participantId: added.id });
      const expected = [
        "message_created",
        "message_updated",
        "reaction_added",
        "reaction_removed",
        "message_deleted",
        "participant_joined",
        "message_created",
        "participant_left",
        "message_created",
      ];
      await vi.waitFor(
        () =>
          expect(
            client.events(topic).length >= expected.length,
            `${expected.length} frames, got ${JSON.stringify(client.events(topic).map((f) => f["type"]))}`,
          ).toBe(true),
        { timeout: 10_000, interval: 20 },
      );
      const frames = client.events(topic);
      expect(frames.map((f) => f["type"])).toEqual(expected);
      expect(frames.map(seqOf)).toEqual(range(start + 1, start + expected.length));
      for (const frame of frames) {
        // The spec's dialect (docs/api.md): int64 as a number, timestamps as "2024-01-17 10:30:00.000000".
        expect(typeof frame["seq"], "seq is a number").toBe("number");
        expect(frame["tm_create"]).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}$/);
        expect(frame).toMatchObject({ chat_id: chatId, customer_id: a.customerId, topic });
        // The payload is under the snake_case name of the type.
        expect(frame[frame["type"] as string], `payload of ${String(frame["type"])}`).toBeTypeOf("object");
      }
      expect(frames[0]?.["message_created"]).toMatchObject({ id: message.id, text: "over the socket", owner_id: b.id, chat_id: chatId });
      expect(frames[0]?.["actor"]).toMatchObject({ owner_type: "agent", owner_id: b.id });
      expect(frames[1]?.["message_updated"]).toMatchObject({ id: message.id, text: "edited over the socket" });
      expect(frames[2]?.["reaction_added"]).toMatchObject({ reaction: { emoji: "wave", owner_id: a.id }, message: { id: message.id } });
      expect(frames[3]?.["reaction_removed"]).toMatchObject({ reaction: { emoji: "wave" }, message: { id: message.id } });
      expect(frames[4]?.["message_deleted"]).toMatchObject({ id: message.id });
      expect(frames[5]?.["participant_joined"]).toMatchObject({ participant: { owner_id: c.id, id: added.id }, talk: { id: chatId } });
      expect(frames[7]?.["participant_left"]).toMatchObject({ participant: { owner_id: c.id } });
      expect(client.ofType("error")).toEqual([]);
    } finally {
      client.close();
    }
  });

  it("replays from after_seq on a customer_id topic and on the service_agents path", async () => {
    const { a, b } = await trio(env);
    const chatId = (await createTalk(a, [b])).id;
    await sendText(a, chatId, "early");
    const last = await lastSeqOf(a, chatId);
    const topic = `customer_id:${a.customerId}:talk_chat:${chatId}`;
    const client = await open(b, "/v1.0/service_agents/ws");
    try {
      await subscribe(client, [topic], { after_seq: 2 });
      await sendText(a, chatId, "late");
      await vi.waitFor(() => expect(client.events(topic).length >= last - 1, `frames from seq 3 (${client.frames.length})`).toBe(true), {
        timeout: 10_000,
        interval: 20,
      });
      expect(client.events(topic).map(seqOf)).toEqual(range(3, last + 1));
    } finally {
      client.close();
    }
  });

  it("the * topic follows every talk of the agent, also one created after subscribing", async () => {
    const { a, b, c } = await trio(env);
    const existing = (await createTalk(a, [b])).id;
    const topic = `agent_id:${a.id}:talk_chat:*`;
    const client = await open(a);
    try {
      await subscribe(client, [topic]);
      await sendText(b, existing, "in the existing talk");
      const created = (await createTalk(c, [a])).id;
      await sendText(c, created, "in the new talk");
      const lastCreated = await lastSeqOf(c, created);
      const lastExisting = await lastSeqOf(a, existing);
      await vi.waitFor(
        () =>
          expect(
            client.events(topic).some((f) => f["chat_id"] === created && seqOf(f) === lastCreated),
            `the new talk's frames (${JSON.stringify(client.events(topic).map((f) => [f["chat_id"], f["seq"], f["type"]]))})`,
          ).toBe(true),
        { timeout: joinBound, interval: 20 },
      );
      const ofCreated = client.events(topic).filter((f) => f["chat_id"] === created);
      const firstSeq = seqOf(must(ofCreated[0]));
      expect(ofCreated.map(seqOf)).toEqual(range(firstSeq, lastCreated));
      expect(ofCreated[0]).toMatchObject({ type: "participant_joined", participant_joined: { participant: { owner_id: a.id } } });
      expect(ofCreated.at(-1)?.["message_created"]).toMatchObject({ text: "in the new talk" });
      await vi.waitFor(
        () =>
          expect(
            client.events(topic).some((f) => f["chat_id"] === existing && seqOf(f) === lastExisting),
            "the existing talk's frame",
          ).toBe(true),
        { timeout: 10_000, interval: 20 },
      );
      expect(
        client
          .events(topic)
          .filter((f) => f["chat_id"] === existing)
          .map(seqOf),
      ).toEqual([lastExisting]);
    } finally {
      client.close();
    }
  });

  it("answers bad frames and forbidden topics with error frames and keeps the connection open", async () => {
    const { a, b, c } = await trio(env);
    const mine = (await createTalk(a, [b])).id;
    const notMine = (await createTalk(b, [c])).id;
    const client = await open(a);
    try {
      const cases: { frame: unknown; code: string; topic?: string }[] = [
        { frame: "this is not json", code: "invalid_argument" },
        { frame: "[1,2]", code: "invalid_argument" },
        { frame: { type: "bogus", topics: [] }, code: "invalid_argument" },
        { frame: { type: "subscribe", topics: `agent_id:${a.id}:talk_chat:${mine}` }, code: "invalid_argument" },
        { frame: { type: "subscribe", topics: [42] }, code: "invalid_argument" },
        { frame: { type: "subscribe", topics: [`agent_id:${a.id}:talk_chat:${mine}`], after_seq: "x" }, code: "invalid_argument" },
        {
          frame: { type: "subscribe", topics: [`team_id:${a.id}:talk_chat:${mine}`] },
          code: "invalid_argument",
          topic: `team_id:${a.id}:talk_chat:${mine}`,
        },
        {
          frame: { type: "subscribe", topics: [`agent_id:${a.id}:tickets:${mine}`] },
          code: "invalid_argument",
          topic: `agent_id:${a.id}:tickets:${mine}`,
        },
        { frame: { type: "subscribe", topics: ["garbage"] }, code: "invalid_argument", topic: "garbage" },
        {
          frame: { type: "subscribe", topics: [`agent_id:${b.id}:talk_chat:${mine}`] },
          code: "permission_denied",
          topic: `agent_id:${b.id}:talk_chat:${mine}`,
        },
        {
          frame: { type: "subscribe", topics: [`agent_id:${b.id}:talk_chat:*`] },
          code: "permission_denied",
          topic: `agent_id:${b.id}:talk_chat:*`,
        },
        {
          frame: { type: "subscribe", topics: [`customer_id:${newCustomer()}:talk_chat:${mine}`] },
          code: "permission_denied",
        },
        {
          frame: { type: "subscribe", topics: [`agent_id:${a.id}:talk_chat:${notMine}`] },
          code: "not_found",
          topic: `agent_id:${a.id}:talk_chat:${notMine}`,
        },
        { frame: { type: "subscribe", topics: [`agent_id:${a.id}:talk_chat:${randomUUID()}`] }, code: "not_found" },
      ];
      for (const { frame, code, topic } of cases) {
        const from = client.frames.length;
        client.send(frame);
        const error = await client.waitFrame((f) => f["type"] === "error", from);
        expect(error, `answer to ${JSON.stringify(frame)}`).toMatchObject({
          type: "error",
          code,
          ...(topic === undefined ? {} : { topic }),
        });
        expect(typeof error["message"]).toBe("string");
        expect(client.closed, `closed after ${JSON.stringify(frame)}`).toBe(false);
      }
      // Still open and working: a valid subscribe gets its ack and its events.
      const topic = `agent_id:${a.id}:talk_chat:${mine}`;
      await subscribe(client, [topic]);
      const message = await sendText(b, mine, "still here");
      const frame = await client.waitFrame((f) => f["topic"] === topic && f["type"] === "message_created");
      expect(frame["message_created"]).toMatchObject({ id: message.id });
      // None of the refused topics delivered anything.
      expect(client.events().every((f) => f["topic"] === topic)).toBe(true);
    } finally {
      client.close();
    }
  });

  it("stops delivering a topic after unsubscribe", async () => {
    const { a, b } = await trio(env);
    const first = (await createTalk(a, [b])).id;
    const second = (await createTalk(b, [a])).id;
    const topic1 = `agent_id:${a.id}:talk_chat:${first}`;
    const topic2 = `agent_id:${a.id}:talk_chat:${second}`;
    const client = await open(a);
    try {
      await subscribe(client, [topic1, topic2]);
      await sendText(b, first, "one");
      await client.waitFrame((f) => f["topic"] === topic1);
      const from = client.frames.length;
      client.send({ type: "unsubscribe", topics: [topic1] });
      const ack = await client.waitFrame((f) => f["type"] === "ack", from);
      expect(ack).toMatchObject({ action: "unsubscribe", topics: [topic1] });
      const countBefore = client.events(topic1).length;
      for (let i = 0; i < 3; i++) await sendText(b, first, `after unsubscribe ${i}`);
      // Markers on the other topic, sent after those, show the socket went on without them.
      for (let round = 0; round < 2; round++) {
        const marker = await sendText(b, second, `marker ${round}`);
        await client.waitFrame((f) => f["topic"] === topic2 && (f["message_created"] as { id?: string } | undefined)?.id === marker.id);
      }
      expect(client.events(topic1)).toHaveLength(countBefore);
      // Subscribing again works, from now on.
      await subscribe(client, [topic1]);
      const again = await sendText(b, first, "subscribed again");
      const frame = await client.waitFrame(
        (f) => f["topic"] === topic1 && (f["message_created"] as { id?: string } | undefined)?.id === again.id,
      );
      expect(seqOf(frame)).toBe(Number(again.seq));
      expect(client.events(topic1)).toHaveLength(countBefore + 1);
    } finally {
      client.close();
    }
  });

  it("ends a talk topic with a permission_denied frame after the subscriber's own participant_left", async () => {
    const { a, b } = await trio(env);
    const chatId = (await createTalk(a, [b])).id;
    const topic = `agent_id:${b.id}:talk_chat:${chatId}`;
    const client = await open(b);
    try {
      await subscribe(client, [topic]);
      const own = must((await a.talks.listParticipants({ chatId })).result.find((p) => p.ownerId === b.id));
      await a.talks.removeParticipant({ chatId, participantId: own.id });
      const error = await client.waitFrame((f) => f["type"] === "error");
      expect(error).toMatchObject({ code: "permission_denied", topic });
      const events = client.events(topic);
      expect(events.at(-1)).toMatchObject({ type: "participant_left", participant_left: { participant: { owner_id: b.id } } });
      expect(client.closed).toBe(false);
    } finally {
      client.close();
    }
  });

  it("refuses the upgrade with HTTP 401 without a valid token", async () => {
    const { a } = await trio(env);
    const base = `ws://127.0.0.1:${env.service.port}`;
    expect(await upgradeStatus(`${base}/v1.0/ws`)).toBe(401);
    expect(await upgradeStatus(`${base}/v1.0/ws?token=`)).toBe(401);
    expect(await upgradeStatus(`${base}/v1.0/ws?token=garbage`)).toBe(401);
    const forged = await mintToken(randomBytes(32).toString("hex"), {
      customerId: a.customerId,
      agentId: a.id,
      name: "Ann",
      role: undefined,
    });
    expect(await upgradeStatus(`${base}/v1.0/ws?token=${forged}`)).toBe(401);
    expect(await upgradeStatus(`${base}/v1.0/service_agents/ws?token=${forged}`)).toBe(401);
    // The real token is accepted on both paths.
    expect(await upgradeStatus(wsUrl(a.token))).toBe(101);
    expect(await upgradeStatus(wsUrl(a.token, "/v1.0/service_agents/ws"))).toBe(101);
  });
  it("closes the socket with 4001 and an actionable reason when its token expires", { timeout: 40_000 }, async () => {
    const { a, b } = await trio(env);
    const chatId = (await createTalk(a, [b])).id;
    // A token of the same agent that expires within seconds.
    const shortLived = await mintToken(env.secret, {
      customerId: a.customerId,
      agentId: a.id,
      name: "Ann",
      role: undefined,
      expiresInSeconds: 3,
    });
    const client = new WsClient(wsUrl(shortLived));
    const closed = closeOf(client);
    await client.opened;
    try {
      await subscribe(client, [`agent_id:${a.id}:talk_chat:*`, `agent_id:${a.id}:talk_chat:${chatId}`]);
      await vi.waitFor(() => expect(closed.code !== undefined, "the socket to close when its token expires").toBe(true), {
        timeout: 20_000,
        interval: 20,
      });
      expect(closed.code).toBe(4001);
      expect(closed.reason).toContain("expired");
      // The expired token no longer opens a socket; the agent's valid one does, and serves.
      expect(await upgradeStatus(wsUrl(shortLived))).toBe(401);
      const again = await open(a);
      try {
        await subscribe(again, [`agent_id:${a.id}:talk_chat:${chatId}`]);
      } finally {
        again.close();
      }
    } finally {
      client.close();
    }
  });

  it("keeps a socket whose token expires past setTimeout's range (30 days) open, without an overflowing timer", async () => {
    const { a } = await trio(env);
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(warning.name);
    process.on("warning", onWarning);
    try {
      // The harness's tokens live 30 days: more than the 2^31-1 ms a timer can wait.
      const client = await open(a);
      try {
        await subscribe(client, [`agent_id:${a.id}:talk_chat:*`]);
        await subscribe(client, [`agent_id:${a.id}:talk_chat:*`]);
        expect(client.closed).toBe(false);
      } finally {
        client.close();
      }
    } finally {
      process.off("warning", onWarning);
    }
    expect(warnings).not.toContain("TimeoutOverflowWarning");
  });

  it("takes the Authorization header over ?token= on the WebSocket and on HTTP alike", async () => {
    const { a } = await trio(env);
    const base = `ws://127.0.0.1:${env.service.port}/v1.0/ws`;
    const garbage = "garbage.garbage.garbage";
    // The header wins when present, valid or not.
    expect(await upgradeStatus(`${base}?token=${garbage}`, { Authorization: `Bearer ${a.token}` })).toBe(101);
    expect(await upgradeStatus(`${base}?token=${a.token}`, { Authorization: `Bearer ${garbage}` })).toBe(401);
    expect(await upgradeStatus(`${base}?token=${a.token}`, { Authorization: `Basic ${Buffer.from("a:b").toString("base64")}` })).toBe(401);
    // Without a header, ?token= counts.
    expect(await upgradeStatus(`${base}?token=${a.token}`, {})).toBe(101);
    // The same on the REST edge.
    expect((await rest(env.service.url, "GET", `/v1.0/talks?token=${garbage}`, { bearer: a.token })).status).toBe(200);
    expect((await rest(env.service.url, "GET", `/v1.0/talks?token=${a.token}`, { bearer: garbage })).status).toBe(401);
    expect((await rest(env.service.url, "GET", `/v1.0/talks?token=${a.token}`, { headers: { Authorization: "Basic YTpi" } })).status).toBe(
      401,
    );
    expect((await rest(env.service.url, "GET", `/v1.0/talks?token=${a.token}`)).status).toBe(200);
  });

  it("limits topics per frame, topic length and subscriptions per connection with error frames, never internal", async () => {
    const { a } = await trio(env);
    const client = await open(a);
    try {
      const expectError = async (frame: unknown, code: string, mentions: string): Promise<void> => {
        const from = client.frames.length;
        client.send(frame);
        const error = await client.waitFrame((f) => f["type"] === "error", from);
        expect(error).toMatchObject({ code });
        expect(String(error["message"])).toContain(mentions);
      };
      const many = Array.from({ length: 101 }, () => `agent_id:${a.id}:talk_chat:${randomUUID()}`);
      await expectError({ type: "subscribe", topics: many }, "invalid_argument", "at most 100 topics");
      await expectError({ type: "subscribe", topics: [`agent_id:${a.id}:talk_chat:${"x".repeat(300)}`] }, "invalid_argument", "characters");
      await expectError(`${"[".repeat(20_000)}${"]".repeat(20_000)}`, "invalid_argument", "frame");
      await expectError(JSON.stringify({ ["__proto__"]: { type: "subscribe" }, topics: [] }), "invalid_argument", "type");
      // Subscriptions per connection: 100 distinct topics (spellings of one talk's topic) fit,
      // the 101st is refused until one is given up.
      const chatId = (await createTalk(a, [])).id;
      const topics = topicSpellings(a, chatId, 101);
      await subscribe(client, topics.slice(0, 100));
      await expectError({ type: "subscribe", topics: [topics[100]] }, "resource_exhausted", "at most 100 subscriptions");
      const from = client.frames.length;
      client.send({ type: "unsubscribe", topics: [topics[0]] });
      await client.waitFrame((f) => f["type"] === "ack", from);
      await subscribe(client, [must(topics[100])]);
      expect(client.ofType("error").every((f) => f["code"] !== "internal")).toBe(true);
      expect(client.closed).toBe(false);
    } finally {
      client.close();
    }
  });
});

describe.each(backends)("WebSocket of a deleted agent on %s", (backend) => {
  // A deletion reaches open sockets through the caller re-check, which runs with the
  // membership re-check (10 minutes in the suite above).
  const env = useService(backend, { live: { heartbeatMs: 500, gapCheckMs: 200, membershipCheckMs: 500 } });

  it("closes the agent's sockets with 4001 when an admin deletes the agent", { timeout: 40_000 }, async () => {
    const customer = newCustomer();
    const [admin, bob] = await Promise.all([env.agent(customer, "Ann", { role: "admin" }), env.agent(customer, "Bob")]);
    const chatId = (await createTalk(admin, [bob])).id;
    const client = new WsClient(wsUrlOf(env, bob.token));
    const closed = closeOf(client);
    await client.opened;
    try {
      await subscribe(client, [`agent_id:${bob.id}:talk_chat:*`, `agent_id:${bob.id}:talk_chat:${chatId}`]);
      await admin.agents.deleteAgent({ id: bob.id });
      await vi.waitFor(() => expect(closed.code, "the deleted agent's socket to close").toBeDefined(), { timeout: 20_000, interval: 20 });
      expect(closed.code).toBe(4001);
      expect(closed.reason.length).toBeGreaterThan(0);
      // The admin's own socket is not touched.
      const own = await openOn(env, admin);
      try {
        await subscribe(own, [`agent_id:${admin.id}:talk_chat:${chatId}`]);
      } finally {
        own.close();
      }
    } finally {
      client.close();
    }
  });
});
