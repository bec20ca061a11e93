/**
 * WatchTalk: replay and live delivery in seq order, resuming without gap or duplicate under
 * concurrent writers, every event type with its payload, how streams end, heartbeats, and
 * gap filling from the log when the bus loses events.
 */
import { describe, expect, it, vi } from "vitest";
import type { Event } from "../../gen/talk/v1/events_pb.js";
import { Code, createTalk, liveBackends, ms, must, newCustomer, sendText, useService } from "../support/harness.js";
import type { TestAgent, TestEnv } from "../support/harness.js";
import {
  TalkWatcher,
  allEventTypes,
  expectContiguous,
  lastSeqOf,
  listAllMessages,
  payloadCase,
  range,
  replayAll,
  seqsOf,
} from "../support/live-helpers.js";

const backends = await liveBackends();

/** Three agents of a fresh customer in a group talk. */
async function trio(env: TestEnv): Promise<{ a: TestAgent; b: TestAgent; c: TestAgent; chatId: string }> {
  const customer = newCustomer();
  const [a, b, c] = await Promise.all([env.agent(customer, "Ann"), env.agent(customer, "Bob"), env.agent(customer, "Cy")]);
  const talk = await createTalk(a, [b, c]);
  return { a, b, c, chatId: talk.id };
}

/** (seq, type, message id) of events, for comparing two views of one log. */
const shape = (events: readonly Event[]) =>
  events.map((e) => {
    const value = e.payload.value as { id?: string; message?: { id: string } } | undefined;
    return { seq: Number(e.seq), type: e.type, id: value?.id ?? value?.message?.id ?? "" };
  });

/** Runs a call and notes when it started and ended (epoch ms; the service shares this clock). */
async function during<T>(call: () => Promise<T>): Promise<{ result: T; from: number; to: number }> {
  const from = Date.now();
  const result = await call();
  return { result, from, to: Date.now() };
}

/** Whether a time (epoch ms) falls in a call's span. */
const within = (span: { from: number; to: number }) => (time: number) => time >= span.from && time <= span.to;

/**
 * Follows a talk from `start` with a watcher that is cut and resumed (after_seq = the last seq
 * received) up to `cycles` times while `busy()`; returns everything received, in order.
 */
async function reconnectingWatch(
  agents: readonly TestAgent[],
  chatId: string,
  start: number,
  busy: () => boolean,
  sent: () => number,
  cycles: number,
): Promise<{ events: Event[]; sessions: number }> {
  const events: Event[] = [];
  let after = start;
  let sessions = 0;
  for (let cycle = 0; cycle < cycles && busy(); cycle++) {
    const watcher = new TalkWatcher(agents[cycle % agents.length] as TestAgent, chatId, after);
    sessions++;
    // Take a few events (or whatever comes before the writers stop), then drop the stream.
    await vi.waitFor(() => expect(watcher.events.length >= 3 + cycle || !busy() || watcher.ended, watcher.describe()).toBe(true), {
      timeout: 15_000,
      interval: 20,
    });
    await watcher.abort();
    expect(watcher.error?.code, `cycle ${cycle} ended by: ${watcher.error?.message}`).toBe(Code.Canceled);
    events.push(...watcher.events);
    after = watcher.lastSeq;
    // Let some messages go by while disconnected.
    const sentAtCut = sent();
    await vi.waitFor(() => expect(sent() >= sentAtCut + 4 || !busy(), "messages sent while disconnected").toBe(true), {
      timeout: 15_000,
      interval: 20,
    });
  }
  return { events, sessions };
}

describe.each(backends)("WatchTalk on %s", (backend) => {
  // The head sweep runs every 10 minutes, far beyond every wait: what the watchers get comes
  // over the bus (the in-process one on pglite, NATS on postgres).
  const env = useService(backend, { live: { heartbeatMs: 300, gapCheckMs: 600_000 } });

  it("replays the whole log from 0 in seq order, then delivers live events in order", async () => {
    const customer = newCustomer();
    const [a, b] = await Promise.all([env.agent(customer, "Ann"), env.agent(customer, "Bob")]);
    const talk = await createTalk(a, [b]);
    const chatId = talk.id;
    const one = await sendText(a, chatId, "one");
    const two = await sendText(b, chatId, "two");
    await a.messages.updateMessage({ id: one.id, text: "one, edited" });
    await b.messages.addReaction({ messageId: one.id, emoji: "thumbsup" });
    await b.messages.removeReaction({ messageId: one.id, emoji: "thumbsup" });
    await b.messages.deleteMessage({ id: two.id });
    await a.talks.updateTalk({ id: chatId, name: "renamed" });
    const last = await lastSeqOf(a, chatId);

    const watcher = new TalkWatcher(b, chatId, 0);
    try {
      await watcher.waitSeq(last);
      const replay = watcher.events.slice();
      expectContiguous(replay, 1, last, "replay");
      // Creation: each member joins (participant_joined, then a system message).
      expect(replay.slice(0, 4).map((e) => e.type)).toEqual([
        "participant_joined",
        "message_created",
        "participant_joined",
        "message_created",
      ]);
      const joined = replay
        .filter((e) => e.payload.case === "participantJoined")
        .map((e) => (e.payload.value as { participant?: { ownerId: string } }).participant?.ownerId);
      expect(new Set(joined)).toEqual(new Set([a.id, b.id]));
      for (const e of replay.slice(0, 4).filter((x) => x.payload.case === "messageCreated")) {
        expect((e.payload.value as { type: string }).type).toBe("system");
      }
      expect(replay.slice(4).map((e) => e.type)).toEqual([
        "message_created",
        "message_created",
        "message_updated",
        "reaction_added",
        "reaction_removed",
        "message_deleted",
        "talk_updated",
      ]);
      expect(replay.every((e) => e.chatId === chatId && e.customerId === customer)).toBe(true);
      for (const e of replay) expect(e.payload.case, `payload of ${e.type}`).toBe(payloadCase(e.type));

      // Live, after the replay.
      const texts = range(1, 5).map((i) => `live ${i}`);
      for (const [i, text] of texts.entries()) await sendText(i % 2 === 0 ? a : b, chatId, text);
      await watcher.waitSeq(last + 5);
      expectContiguous(watcher.events, 1, last + 5, "replay + live");
      expect(watcher.events.slice(last).map((e) => (e.payload.value as { text?: string }).text)).toEqual(texts);
      expect(watcher.ended, watcher.describe()).toBe(false);
    } finally {
      await watcher.abort();
    }
  });

  it("resumes with after_seq = last seq received without gap or duplicate while 3 agents send concurrently", async () => {
    const { a, b, c, chatId } = await trio(env);
    const start = await lastSeqOf(a, chatId);
    const senders = [a, b, c];
    const perSender = 30;
    let sent = 0;
    let sending = true;
    const sendAll = Promise.all(
      senders.map(async (sender, s) => {
        for (let i = 0; i < perSender; i++) {
          await sendText(sender, chatId, `s${s}-m${i}`);
          sent++;
        }
      }),
    ).finally(() => (sending = false));

    // Two independent watchers, each cut and resumed several times while the messages go out.
    const follow = (agents: TestAgent[]) =>
      reconnectingWatch(
        agents,
        chatId,
        start,
        () => sending,
        () => sent,
        6,
      );
    const [first, second] = await Promise.all([follow([a, b]), follow([c, a])]);
    await sendAll;
    const final = start + senders.length * perSender;
    expect(await lastSeqOf(a, chatId)).toBe(final);

    for (const [name, run] of [
      ["first", first],
      ["second", second],
    ] as const) {
      expect(run.sessions, `${name}: reconnections`).toBeGreaterThanOrEqual(2);
      // Finish: resume once more from the last seq received, up to the end.
      const after = run.events.length === 0 ? start : Number(must(run.events.at(-1)).seq);
      const tail = new TalkWatcher(b, chatId, after);
      try {
        await tail.waitSeq(final, 15_000);
      } finally {
        await tail.abort();
      }
      const all = [...run.events, ...tail.events];
      expectContiguous(all, start + 1, final, `${name} watcher across ${run.sessions + 1} sessions`);

      // The same as the full replay, and as ListMessages.
      const replay = (await replayAll(a, chatId)).filter((e) => Number(e.seq) > start);
      expect(shape(all)).toEqual(shape(replay));
      const messages = (await listAllMessages(a, chatId)).filter((m) => Number(m.seq) > start);
      expect(messages.map((m) => ({ seq: Number(m.seq), id: m.id }))).toEqual(
        all.map((e) => ({ seq: Number(e.seq), id: (e.payload.value as { id: string }).id })),
      );
      expect(new Set(all.map((e) => (e.payload.value as { text: string }).text))).toEqual(
        new Set(senders.flatMap((_, s) => range(0, perSender - 1).map((i) => `s${s}-m${i}`))),
      );
    }
  });

  it("delivers all 11 event types with the matching payload case and content", async () => {
    const { a, b, c, chatId } = await trio(env);
    // c leaves first so that it can be added back (participant_joined) later.
    const cParticipant = must((await a.talks.listParticipants({ chatId })).result.find((p) => p.ownerId === c.id));
    await c.talks.removeParticipant({ chatId, participantId: cParticipant.id });
    const start = await lastSeqOf(a, chatId);

    const watcher = new TalkWatcher(a, chatId, start);
    try {
      const message = await sendText(a, chatId, "original");
      await a.messages.updateMessage({ id: message.id, text: "edited" });
      await b.messages.addReaction({ messageId: message.id, emoji: "thumbsup" });
      await b.messages.removeReaction({ messageId: message.id, emoji: "thumbsup" });
      const messageDeletion = await during(() => a.messages.deleteMessage({ id: message.id }));
      const tombstone = must(messageDeletion.result.message, "deleted message");
      const added = must((await b.talks.addParticipant({ chatId, agentId: c.id })).participant);
      await b.talks.removeParticipant({ chatId, participantId: added.id });
      await a.talks.updateTalk({ id: chatId, name: "new name" });
      await a.talks.closeTalk({ id: chatId });
      await b.talks.reopenTalk({ id: chatId });
      const talkDeletion = await during(() => a.talks.deleteTalk({ id: chatId }));
      const deletedTalk = must(talkDeletion.result.talk, "deleted talk");

      const expected = [
        "message_created",
        "message_updated",
        "reaction_added",
        "reaction_removed",
        "message_deleted",
        "participant_joined",
        "message_created", // system: c joined
        "participant_left",
        "message_created", // system: c left
        "talk_updated",
        "talk_closed",
        "talk_reopened",
        "talk_deleted",
      ];
      await watcher.waitEvents(expected.length);
      const events = watcher.events;
      expectContiguous(events, start + 1, start + expected.length);
      expect(events.map((e) => e.type)).toEqual(expected);
      expect(new Set(events.map((e) => e.type))).toEqual(new Set(allEventTypes));
      for (const e of events) expect(e.payload.case, `payload of ${e.type}`).toBe(payloadCase(e.type));

      const [created, updated, reacted, unreacted, deleted, joined, joinedNote, left, , talkUpdated, closed, reopened, talkDeleted] =
        events.map((e) => e.payload);
      const asMessage = (p: Event["payload"] | undefined) =>
        must(p?.case === "messageCreated" || p?.case === "messageUpdated" || p?.case === "messageDeleted" ? p.value : undefined, "message");
      expect(asMessage(created)).toMatchObject({ id: message.id, text: "original", ownerId: a.id });
      expect(must(events[0]).actor).toMatchObject({ ownerType: "agent", ownerId: a.id });
      expect(asMessage(updated)).toMatchObject({ id: message.id, text: "edited" });
      // The tombstone: no text, deleted at the time DeleteMessage answered with.
      expect(asMessage(deleted)).toMatchObject({ id: message.id, text: "", medias: [] });
      expect(ms(asMessage(deleted).tmDelete)).toBe(ms(tombstone.tmDelete));
      expect(ms(tombstone.tmDelete)).toSatisfy(within(messageDeletion), "deleted while DeleteMessage ran");
      expect(asMessage(joinedNote).type).toBe("system");
      if (reacted?.case !== "reactionAdded" || unreacted?.case !== "reactionRemoved") throw new Error("reaction payloads");
      expect(reacted.value.reaction).toMatchObject({ emoji: "thumbsup", ownerId: b.id });
      expect(reacted.value.message?.id).toBe(message.id);
      expect(reacted.value.message?.metadata?.reactions.map((r) => r.emoji)).toEqual(["thumbsup"]);
      expect(unreacted.value.reaction?.emoji).toBe("thumbsup");
      expect(unreacted.value.message?.metadata?.reactions).toEqual([]);
      if (joined?.case !== "participantJoined" || left?.case !== "participantLeft") throw new Error("participant payloads");
      expect(joined.value.participant).toMatchObject({ id: added.id, ownerId: c.id, chatId });
      expect(joined.value.talk?.memberCount).toBe(3);
      expect(left.value.participant?.ownerId).toBe(c.id);
      expect(left.value.talk?.memberCount).toBe(2);
      expect(talkUpdated?.case === "talkUpdated" && talkUpdated.value.name).toBe("new name");
      expect(closed?.case === "talkClosed" && closed.value.status).toBe("closed");
      expect(reopened?.case === "talkReopened" && reopened.value.status).toBe("active");
      if (talkDeleted?.case !== "talkDeleted") throw new Error("talk_deleted payload");
      expect(ms(talkDeleted.value.tmDelete)).toBe(ms(deletedTalk.tmDelete));
      expect(ms(deletedTalk.tmDelete)).toSatisfy(within(talkDeletion), "deleted while DeleteTalk ran");

      // talk_deleted ends the stream with NOT_FOUND.
      await watcher.expectEnd(Code.NotFound);
      expect(watcher.events).toHaveLength(expected.length);
    } finally {
      await watcher.abort();
    }
  });

  it("ends a removed participant's stream with PERMISSION_DENIED right after its own participant_left", async () => {
    const { a, b, chatId } = await trio(env);
    const start = await lastSeqOf(a, chatId);
    const watcherB = new TalkWatcher(b, chatId, start);
    const watcherA = new TalkWatcher(a, chatId, start);
    try {
      await sendText(a, chatId, "before");
      await watcherB.waitSeq(start + 1);
      const bParticipant = must((await a.talks.listParticipants({ chatId })).result.find((p) => p.ownerId === b.id));
      await a.talks.removeParticipant({ chatId, participantId: bParticipant.id });
      await sendText(a, chatId, "after");
      const error = await watcherB.expectEnd(Code.PermissionDenied);
      expect(error.code).toBe(Code.PermissionDenied);
      const last = must(watcherB.events.at(-1));
      expect(last.type).toBe("participant_left");
      expect(last.payload.case === "participantLeft" && last.payload.value.participant?.ownerId).toBe(b.id);
      expectContiguous(watcherB.events, start + 1, start + 2, "b's events");
      // The others go on.
      await watcherA.waitSeq(start + 4);
      expect(watcherA.events.map((e) => e.type)).toEqual(["message_created", "participant_left", "message_created", "message_created"]);
      expect(watcherA.ended).toBe(false);
      // And b can no longer watch.
      const again = new TalkWatcher(b, chatId, start);
      await again.expectEnd(Code.NotFound);
    } finally {
      await Promise.all([watcherA.abort(), watcherB.abort()]);
    }
  });

  it("replays past its own old participant_left for an agent that was removed and added back", async () => {
    const { a, b, chatId } = await trio(env);
    const bParticipant = must((await a.talks.listParticipants({ chatId })).result.find((p) => p.ownerId === b.id));
    await a.talks.removeParticipant({ chatId, participantId: bParticipant.id });
    await sendText(a, chatId, "while b was away");
    await a.talks.addParticipant({ chatId, agentId: b.id });
    await sendText(a, chatId, "welcome back");
    const last = await lastSeqOf(a, chatId);
    // b takes part again: the whole log replays, including b's earlier leave, and goes on live.
    const watcher = new TalkWatcher(b, chatId, 0);
    try {
      await watcher.waitSeq(last);
      expectContiguous(watcher.events, 1, last, "b's replay");
      await sendText(a, chatId, "live");
      await watcher.waitSeq(last + 1);
      expect(watcher.ended, watcher.describe()).toBe(false);
    } finally {
      await watcher.abort();
    }
  });

  it("answers NOT_FOUND to a non-participant and to a deleted talk, and INVALID_ARGUMENT to a bad chat_id", async () => {
    const { a, chatId } = await trio(env);
    const outsider = await env.agent(a.customerId, "Out");
    const stranger = await env.agent(newCustomer(), "Stranger");
    await new TalkWatcher(outsider, chatId, 0).expectEnd(Code.NotFound);
    await new TalkWatcher(stranger, chatId, 0).expectEnd(Code.NotFound);
    await new TalkWatcher(a, "not-a-uuid", 0).expectEnd(Code.InvalidArgument);
    await new TalkWatcher(a, chatId, -1).expectEnd(Code.InvalidArgument);
    await a.talks.deleteTalk({ id: chatId });
    await new TalkWatcher(a, chatId, 0).expectEnd(Code.NotFound);
  });

  it("answers OUT_OF_RANGE to an after_seq ahead of the talk", async () => {
    const { a, chatId } = await trio(env);
    const last = await lastSeqOf(a, chatId);
    await new TalkWatcher(a, chatId, last + 1).expectEnd(Code.OutOfRange);
    await new TalkWatcher(a, chatId, last + 1000).expectEnd(Code.OutOfRange);
    // last itself is fine: only new events.
    const watcher = new TalkWatcher(a, chatId, last);
    try {
      await sendText(a, chatId, "new");
      await watcher.waitSeq(last + 1);
      expectContiguous(watcher.events, last + 1, last + 1);
    } finally {
      await watcher.abort();
    }
  });

  it("answers OUT_OF_RANGE to an after_seq older than the retained log", async () => {
    const { a, chatId } = await trio(env);
    for (let i = 0; i < 3; i++) await sendText(a, chatId, `m${i}`);
    const last = await lastSeqOf(a, chatId);
    if (env.query !== undefined) {
      await env.query("DELETE FROM events WHERE chat_id = $1 AND seq <= 3", [chatId]);
    } else {
      await env.service.database.db.deleteFrom("events").where("chat_id", "=", chatId).where("seq", "<=", 3).execute();
    }
    await new TalkWatcher(a, chatId, 0).expectEnd(Code.OutOfRange);
    await new TalkWatcher(a, chatId, 2).expectEnd(Code.OutOfRange);
    // From the first retained position on, it replays.
    const watcher = new TalkWatcher(a, chatId, 3);
    try {
      await watcher.waitSeq(last);
      expectContiguous(watcher.events, 4, last);
    } finally {
      await watcher.abort();
    }
  });

  it("never sends a heartbeat ahead of the events delivered on the stream, also during a replay", async () => {
    const { a, chatId } = await trio(env);
    for (let i = 0; i < 6; i++) await sendText(a, chatId, `m${i}`);
    const head = await lastSeqOf(a, chatId);
    const from = head - 5;
    const watcher = new TalkWatcher(a, chatId, from);
    try {
      await watcher.waitSeq(head);
      // Wait for a heartbeat after the replay too, so the rule is checked on both sides of it.
      const seen = watcher.responses.length;
      await vi.waitFor(() => expect(watcher.responses.length > seen, "a heartbeat after the replay").toBe(true), {
        timeout: 5_000,
        interval: 20,
      });
      let delivered = from;
      for (const response of watcher.responses) {
        if (response.kind.case === "event") delivered = Number(response.kind.value.seq);
        if (response.kind.case === "heartbeat")
          expect(Number(response.kind.value.lastSeq), "a heartbeat's last_seq").toBeLessThanOrEqual(delivered);
      }
      expect(watcher.heartbeats.length).toBeGreaterThanOrEqual(2);
    } finally {
      await watcher.abort();
    }
  });

  it("a client that drops mid-replay and resumes from its last heartbeat loses nothing", async () => {
    const { a, chatId } = await trio(env);
    for (let i = 0; i < 6; i++) await sendText(a, chatId, `m${i}`);
    const head = await lastSeqOf(a, chatId);
    const from = head - 5;
    // The first connection drops as soon as it hears a heartbeat, wherever the replay is.
    const received: number[] = [];
    let resumeAt = from;
    const controller = new AbortController();
    try {
      for await (const response of a.talks.watchTalk({ chatId, afterSeq: BigInt(from) }, { signal: controller.signal })) {
        if (response.kind.case === "event") received.push(Number(response.kind.value.seq));
        if (response.kind.case === "heartbeat") {
          resumeAt = Number(response.kind.value.lastSeq);
          break;
        }
      }
    } finally {
      controller.abort();
    }
    const resumed = new TalkWatcher(a, chatId, resumeAt);
    try {
      await resumed.waitSeq(head);
      const all = new Set([...received, ...seqsOf(resumed.events)]);
      expect([...all].sort((x, y) => x - y)).toEqual(range(from + 1, head));
    } finally {
      await resumed.abort();
    }
  });

  it("sends heartbeats on an idle stream carrying the latest seq", async () => {
    const { a, chatId } = await trio(env);
    const last = await lastSeqOf(a, chatId);
    const watcher = new TalkWatcher(a, chatId, last);
    try {
      await vi.waitFor(() => expect(watcher.heartbeats.length >= 1, `a heartbeat (${watcher.describe()})`).toBe(true), {
        timeout: 5_000,
        interval: 20,
      });
      expect(Number(must(watcher.heartbeats[0]).lastSeq)).toBe(last);
      await sendText(a, chatId, "wake up");
      await watcher.waitSeq(last + 1);
      const seen = watcher.heartbeats.length;
      await vi.waitFor(() => expect(watcher.heartbeats.length > seen, "a heartbeat after the event").toBe(true), {
        timeout: 5_000,
        interval: 20,
      });
      expect(Number(must(watcher.heartbeats.at(-1)).lastSeq)).toBe(last + 1);
      // Heartbeats come at about heartbeatMs (300 ms), not in a burst.
      const before = watcher.heartbeats.length;
      const t0 = Date.now();
      await vi.waitFor(() => expect(watcher.heartbeats.length >= before + 3, "three more heartbeats").toBe(true), {
        timeout: 5_000,
        interval: 20,
      });
      expect(Date.now() - t0).toBeGreaterThanOrEqual(600);
      expect(watcher.events).toHaveLength(1);
    } finally {
      await watcher.abort();
    }
  });
});

/**
 * How long a lost event may take to come from the log when the head sweep runs every 200 ms
 * (15 sweeps, for a loaded machine); no bus message and no other re-check can bring it sooner.
 */
const sweepBound = 3_000;

describe.each(backends)("WatchTalk gap fill on %s", (backend) => {
  // The head sweep runs every 200 ms here (10 minutes in the suite above).
  const env = useService(backend, { live: { heartbeatMs: 300, gapCheckMs: 200 } });

  it("fills a lost publish from the log within a bounded time (the bus drops a talk's events)", async () => {
    const { a, b, chatId } = await trio(env);
    const start = await lastSeqOf(a, chatId);
    const watcher = new TalkWatcher(b, chatId, start);
    // Fault injection: the service's own bus instance drops this talk's events.
    type Publish = (events: readonly { chatId: string }[]) => void;
    const bus = env.service.deps.events as unknown as { publish: Publish };
    const publish = bus.publish;
    try {
      await sendText(a, chatId, "heard");
      await watcher.waitSeq(start + 1);
      // Drop every publish of this talk: only the log knows of the next events.
      bus.publish = function (this: unknown, events) {
        publish.call(
          this,
          events.filter((e) => e.chatId !== chatId),
        );
      };
      await sendText(a, chatId, "lost 1");
      await sendText(b, chatId, "lost 2");
      // Only the head sweep can bring these: the next publish of the talk comes after the wait.
      await expect.poll(() => watcher.lastSeq, { timeout: sweepBound, interval: 20 }).toBeGreaterThanOrEqual(start + 3);
      bus.publish = publish;
      await sendText(a, chatId, "heard again");
      await watcher.waitSeq(start + 4);
      expectContiguous(watcher.events, start + 1, start + 4);
    } finally {
      bus.publish = publish;
      await watcher.abort();
    }
  });
});

describe.each(backends.filter((b) => b === "postgres"))("WatchTalk gap fill across services on %s", (backend) => {
  const env = useService(backend, { live: { heartbeatMs: 1_000, gapCheckMs: 200 } });

  it("delivers events written through a second service whose bus the first never hears, in order and without duplicates", async () => {
    const other = await env.sibling({ live: { gapCheckMs: 200 } });
    expect(other.liveConfig.natsPrefix).not.toBe(env.liveConfig.natsPrefix);
    const { a, b, chatId } = await trio(env);
    const a2 = other.as(a);
    const b2 = other.as(b);
    const start = await lastSeqOf(a, chatId);
    const watcher = new TalkWatcher(b, chatId, start);
    try {
      // Only through the other service: no bus message reaches the watcher's service.
      await sendText(a2, chatId, "from the other side");
      // Only the head sweep can bring it: nothing else is written through the watcher's service.
      await expect.poll(() => watcher.lastSeq, { timeout: sweepBound, interval: 20 }).toBeGreaterThanOrEqual(start + 1);
      // Interleaved: some through each service.
      for (let i = 0; i < 10; i++) await sendText(i % 3 === 0 ? a : i % 3 === 1 ? a2 : b2, chatId, `mixed ${i}`);
      await watcher.waitSeq(start + 11, 5_000);
      await b2.messages.addReaction({ messageId: (await sendText(a2, chatId, "react to me")).id, emoji: "fire" });
      await watcher.waitSeq(start + 13, 3_000);
      expectContiguous(watcher.events, start + 1, start + 13);
      expect(shape(watcher.events)).toEqual(shape((await replayAll(a, chatId)).filter((e) => Number(e.seq) > start)));
      expect(seqsOf(watcher.events)).toEqual(range(start + 1, start + 13));
      expect(watcher.ended, watcher.describe()).toBe(false);
    } finally {
      await watcher.abort();
    }
  });
});
