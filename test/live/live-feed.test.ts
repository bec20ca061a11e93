/**
 * WatchEvents: an agent's feed of all its talks, talks joined while watching, resuming with a
 * cursor, and leaving a talk.
 */
import { describe, expect, it, vi } from "vitest";
import type { Event } from "../../gen/talk/v1/events_pb.js";
import { Code, createTalk, liveBackends, must, newCustomer, sendText, useService } from "../support/harness.js";
import type { TestAgent, TestEnv } from "../support/harness.js";
import { FeedWatcher, expectContiguous, lastSeqOf, range, seqsOf } from "../support/live-helpers.js";

const backends = await liveBackends();

const key = (e: Event) => `${e.chatId}#${e.seq}`;

/** Sends a marker message to `chatId` and waits until `feed` has it: everything sent before is then in. */
async function marker(feed: FeedWatcher, sender: TestAgent, chatId: string): Promise<number> {
  const message = await sendText(sender, chatId, `marker ${Date.now()}`);
  await feed.waitTalkSeq(chatId, Number(message.seq));
  return Number(message.seq);
}

async function agents(env: TestEnv, n: number): Promise<TestAgent[]> {
  const customer = newCustomer();
  return Promise.all(range(1, n).map((i) => env.agent(customer, `Agent ${i}`)));
}

describe.each(backends)("WatchEvents on %s", (backend) => {
  // The membership re-check runs far beyond every wait of this suite (10 s): a talk joined
  // while watching is followed from its bus join message, not from the re-check.
  const env = useService(backend, { live: { heartbeatMs: 500, gapCheckMs: 200, membershipCheckMs: 600_000 } });

  it("starts with a heartbeat carrying a cursor and streams the events of all the agent's talks, only those", async () => {
    const [a, b, c] = (await agents(env, 3)) as [TestAgent, TestAgent, TestAgent];
    const t1 = await createTalk(a, [b]);
    const t2 = await createTalk(c, [a]);
    const notMine = await createTalk(b, [c]);
    const feed = new FeedWatcher(a);
    try {
      await feed.ready();
      const first = must(feed.responses[0]);
      expect(first.kind.case).toBe("heartbeat");
      expect(first.cursor).not.toBe("");
      const [s1, s2] = [await lastSeqOf(a, t1.id), await lastSeqOf(a, t2.id)];
      await sendText(b, t1.id, "t1 from b");
      await sendText(c, t2.id, "t2 from c");
      await sendText(b, notMine.id, "not for a");
      await a.messages.addReaction({ messageId: (await sendText(a, t1.id, "t1 from a")).id, emoji: "eyes" });
      await c.talks.updateTalk({ id: t2.id, name: "t2 renamed" });
      await feed.waitTalkSeq(t1.id, s1 + 3);
      await feed.waitTalkSeq(t2.id, s2 + 2);
      expectContiguous(feed.of(t1.id), s1 + 1, s1 + 3, "t1");
      expectContiguous(feed.of(t2.id), s2 + 1, s2 + 2, "t2");
      expect(feed.of(t1.id).map((e) => e.type)).toEqual(["message_created", "message_created", "reaction_added"]);
      expect(feed.of(t2.id).map((e) => e.type)).toEqual(["message_created", "talk_updated"]);
      expect(feed.of(notMine.id)).toEqual([]);
      // Every response carries a cursor.
      expect(feed.responses.every((r) => r.cursor !== "")).toBe(true);
      expect(feed.events.every((e) => e.customerId === a.customerId)).toBe(true);
    } finally {
      await feed.abort();
    }
  });

  it("delivers a talk the agent joins while watching, from its own participant_joined on", async () => {
    const [a, b, c] = (await agents(env, 3)) as [TestAgent, TestAgent, TestAgent];
    const home = await createTalk(a, [b]);
    const feed = new FeedWatcher(a);
    try {
      await feed.ready();
      // b creates a talk with c, talks a bit, then adds a.
      const later = await createTalk(b, [c]);
      await sendText(b, later.id, "before a joined");
      const joinedAt = (await lastSeqOf(b, later.id)) + 1;
      await b.talks.addParticipant({ chatId: later.id, agentId: a.id });
      await sendText(c, later.id, "hello a");
      // A talk created with a in it, while watching.
      const created = await createTalk(c, [a, b]);
      await sendText(c, created.id, "in the new talk");
      const [laterLast, createdLast] = [await lastSeqOf(b, later.id), await lastSeqOf(c, created.id)];
      await feed.waitTalkSeq(later.id, laterLast);
      await feed.waitTalkSeq(created.id, createdLast);
      await marker(feed, a, home.id);

      const laterEvents = feed.of(later.id);
      expectContiguous(laterEvents, joinedAt, laterLast, "the joined talk");
      const joined = must(laterEvents[0]);
      expect(joined.type).toBe("participant_joined");
      expect(joined.payload.case === "participantJoined" && joined.payload.value.participant?.ownerId).toBe(a.id);

      const createdEvents = feed.of(created.id);
      const ownJoin = createdEvents.findIndex(
        (e) => e.payload.case === "participantJoined" && e.payload.value.participant?.ownerId === a.id,
      );
      expect(ownJoin, `a's join in ${JSON.stringify(createdEvents.map((e) => e.type))}`).toBe(0);
      expectContiguous(createdEvents, Number(must(createdEvents[0]).seq), createdLast, "the created talk");
    } finally {
      await feed.abort();
    }
  });

  it("resumes with the last cursor: exactly the events missed in two talks, then live ones", async () => {
    const [a, b, c] = (await agents(env, 3)) as [TestAgent, TestAgent, TestAgent];
    const t1 = await createTalk(a, [b]);
    const t2 = await createTalk(a, [c]);
    const feed = new FeedWatcher(a);
    const seen: Event[] = [];
    try {
      await feed.ready();
      await sendText(b, t1.id, "seen 1");
      await sendText(c, t2.id, "seen 2");
      await feed.waitTalkSeq(t1.id, await lastSeqOf(a, t1.id));
      await feed.waitTalkSeq(t2.id, await lastSeqOf(a, t2.id));
    } finally {
      await feed.abort();
    }
    seen.push(...feed.events);
    const cursor = feed.cursor;
    const [seen1, seen2] = [await lastSeqOf(a, t1.id), await lastSeqOf(a, t2.id)];
    expect(seqsOf(feed.of(t1.id)).at(-1)).toBe(seen1);

    // Missed while away: 5 in t1, 4 in t2, from several senders.
    for (let i = 0; i < 5; i++) await sendText(i % 2 === 0 ? b : a, t1.id, `missed t1 ${i}`);
    for (let i = 0; i < 4; i++) await sendText(c, t2.id, `missed t2 ${i}`);
    await c.messages.addReaction({ messageId: (await sendText(c, t2.id, "react")).id, emoji: "ok" });

    const resumed = new FeedWatcher(a, cursor);
    try {
      await resumed.ready();
      const [last1, last2] = [await lastSeqOf(a, t1.id), await lastSeqOf(a, t2.id)];
      await resumed.waitTalkSeq(t1.id, last1);
      await resumed.waitTalkSeq(t2.id, last2);
      // A live event after the missed ones, as a marker that nothing else is in between.
      const live = await marker(resumed, b, t1.id);
      expectContiguous(resumed.of(t1.id), seen1 + 1, live, "t1 after resume");
      expectContiguous(resumed.of(t2.id), seen2 + 1, last2, "t2 after resume");
      expect(resumed.events).toHaveLength(live - seen1 + (last2 - seen2));
      const overlap = resumed.events.map(key).filter((k) => seen.map(key).includes(k));
      expect(overlap, "events delivered twice").toEqual([]);

      // Resuming from a cursor taken mid-stream gives the rest.
      const midCursor = must(
        resumed.responses.find((r) => r.kind.case === "event" && r.kind.value.chatId === t2.id && Number(r.kind.value.seq) === seen2 + 2),
      ).cursor;
      const fromMid = new FeedWatcher(a, midCursor);
      try {
        await fromMid.ready();
        await fromMid.waitTalkSeq(t2.id, last2);
        await marker(fromMid, a, t1.id);
        expectContiguous(fromMid.of(t2.id), seen2 + 3, last2, "t2 from the mid-stream cursor");
        // t1 events before the mid cursor were delivered before it; after it only those that followed.
        const t1Before = resumed.responses.findIndex((r) => r.cursor === midCursor);
        const t1After = resumed.responses
          .slice(t1Before + 1)
          .flatMap((r) => (r.kind.case === "event" && r.kind.value.chatId === t1.id ? [Number(r.kind.value.seq)] : []));
        expect(seqsOf(fromMid.of(t1.id)).slice(0, t1After.length)).toEqual(t1After);
      } finally {
        await fromMid.abort();
      }
    } finally {
      await resumed.abort();
    }
  });

  it("resumes with the last cursor into a talk the agent was added to while away, from its join", async () => {
    const [a, b, c] = (await agents(env, 3)) as [TestAgent, TestAgent, TestAgent];
    const home = await createTalk(a, [b]);
    const elsewhere = await createTalk(b, [c]);
    const feed = new FeedWatcher(a);
    try {
      await feed.ready();
      await sendText(b, home.id, "hi");
      await feed.waitTalkSeq(home.id, await lastSeqOf(a, home.id));
    } finally {
      await feed.abort();
    }
    await sendText(c, elsewhere.id, "before a");
    const joinedAt = (await lastSeqOf(b, elsewhere.id)) + 1;
    await b.talks.addParticipant({ chatId: elsewhere.id, agentId: a.id });
    await sendText(c, elsewhere.id, "after a joined");
    const last = await lastSeqOf(b, elsewhere.id);

    const resumed = new FeedWatcher(a, feed.cursor);
    try {
      await resumed.ready();
      await resumed.waitTalkSeq(elsewhere.id, last);
      expectContiguous(resumed.of(elsewhere.id), joinedAt, last, "the talk joined while away");
      expect(must(resumed.of(elsewhere.id)[0]).type).toBe("participant_joined");
    } finally {
      await resumed.abort();
    }
  });

  it("resumes with the last cursor into the talks left and deleted while away: up to the participant_left / talk_deleted, nothing after", async () => {
    const [a, b, c] = (await agents(env, 3)) as [TestAgent, TestAgent, TestAgent];
    const stay = await createTalk(b, [a]);
    const left = await createTalk(b, [a, c]);
    const deleted = await createTalk(a, [b]);
    const leftBefore = await createTalk(b, [a]);
    const ownIn = async (chatId: string) => must((await b.talks.listParticipants({ chatId })).result.find((p) => p.ownerId === a.id));
    const feed = new FeedWatcher(a);
    try {
      await feed.ready();
      // Left while the feed was open: delivered then, so not again on resume.
      const leftBeforeAt = (await lastSeqOf(b, leftBefore.id)) + 1;
      await b.talks.removeParticipant({ chatId: leftBefore.id, participantId: (await ownIn(leftBefore.id)).id });
      await feed.waitTalkSeq(leftBefore.id, leftBeforeAt);
      await marker(feed, b, stay.id);
    } finally {
      await feed.abort();
    }
    const seenLeft = await lastSeqOf(b, left.id);
    const seenDeleted = await lastSeqOf(a, deleted.id);
    // Away: events, then a is removed from one talk, and the other is deleted; then more events.
    await sendText(b, left.id, "before a is removed");
    const leftAt = (await lastSeqOf(b, left.id)) + 1;
    await b.talks.removeParticipant({ chatId: left.id, participantId: (await ownIn(left.id)).id });
    for (let i = 0; i < 3; i++) await sendText(c, left.id, `after a left ${i}`);
    await sendText(b, deleted.id, "before the delete");
    await a.talks.deleteTalk({ id: deleted.id });
    const deletedAt = seenDeleted + 2;
    await sendText(b, leftBefore.id, "long after a left");
    // Joined and left while away: from the join to the leave.
    const brief = await createTalk(b, [c]);
    const briefJoin = (await lastSeqOf(b, brief.id)) + 1;
    await b.talks.addParticipant({ chatId: brief.id, agentId: a.id });
    await sendText(c, brief.id, "while a is in");
    const briefLeft = (await lastSeqOf(b, brief.id)) + 1;
    await b.talks.removeParticipant({ chatId: brief.id, participantId: (await ownIn(brief.id)).id });
    await sendText(c, brief.id, "after a left brief");

    const resumed = new FeedWatcher(a, feed.cursor);
    try {
      await resumed.ready();
      await resumed.waitTalkSeq(left.id, leftAt);
      await resumed.waitTalkSeq(deleted.id, deletedAt);
      await resumed.waitTalkSeq(brief.id, briefLeft);
      await marker(resumed, b, stay.id);
      expectContiguous(resumed.of(left.id), seenLeft + 1, leftAt, "the talk left while away");
      expect(must(resumed.of(left.id).at(-1)).type).toBe("participant_left");
      expectContiguous(resumed.of(deleted.id), seenDeleted + 1, deletedAt, "the talk deleted while away");
      expect(must(resumed.of(deleted.id).at(-1)).type).toBe("talk_deleted");
      expectContiguous(resumed.of(brief.id), briefJoin, briefLeft, "the talk joined and left while away");
      expect(resumed.of(leftBefore.id), "a talk left before the cursor").toEqual([]);
      expect(resumed.ended, resumed.describe()).toBe(false);
    } finally {
      await resumed.abort();
    }
    // A cursor of a feed that starts after those departures does not replay them.
    const fresh = new FeedWatcher(a);
    let freshCursor: string;
    try {
      await fresh.ready();
      freshCursor = fresh.cursor;
    } finally {
      await fresh.abort();
    }
    const again = new FeedWatcher(a, freshCursor);
    try {
      await again.ready();
      await marker(again, b, stay.id);
      expect(
        again.events.filter((e) => e.chatId !== stay.id),
        again.describe(),
      ).toEqual([]);
    } finally {
      await again.abort();
    }
  });

  it("delivers the agent's own participant_left and nothing more from that talk", async () => {
    const [a, b, c] = (await agents(env, 3)) as [TestAgent, TestAgent, TestAgent];
    const stay = await createTalk(a, [b]);
    const leave = await createTalk(a, [b, c]);
    const feed = new FeedWatcher(a);
    try {
      await feed.ready();
      const start = await lastSeqOf(a, leave.id);
      await sendText(b, leave.id, "before a leaves");
      const own = must((await a.talks.listParticipants({ chatId: leave.id })).result.find((p) => p.ownerId === a.id));
      await a.talks.removeParticipant({ chatId: leave.id, participantId: own.id });
      const leftAt = start + 2;
      await feed.waitTalkSeq(leave.id, leftAt);
      for (let i = 0; i < 3; i++) await sendText(b, leave.id, `after a left ${i}`);
      await c.talks.updateTalk({ id: leave.id, name: "without a" });
      // A marker in another talk, sent after all that: the feed is past it when the marker comes.
      await marker(feed, b, stay.id);
      // And past the gap check too, in case a late fill would bring them.
      await vi.waitFor(() => expect(feed.heartbeats.length >= 2, "two heartbeats").toBe(true), { timeout: 5_000, interval: 20 });
      await marker(feed, b, stay.id);
      const events = feed.of(leave.id);
      expect(events.map((e) => e.type)).toEqual(["message_created", "participant_left"]);
      expectContiguous(events, start + 1, leftAt);
      const left = must(events.at(-1));
      expect(left.payload.case === "participantLeft" && left.payload.value.participant?.ownerId).toBe(a.id);
      expect(feed.ended, feed.describe()).toBe(false);
    } finally {
      await feed.abort();
    }
  });

  it("follows a talk again when the agent is added back after leaving it", async () => {
    const [a, b] = (await agents(env, 2)) as [TestAgent, TestAgent];
    const talk = await createTalk(b, [a]);
    const feed = new FeedWatcher(a);
    try {
      await feed.ready();
      const own = must((await a.talks.listParticipants({ chatId: talk.id })).result.find((p) => p.ownerId === a.id));
      await a.talks.removeParticipant({ chatId: talk.id, participantId: own.id });
      const leftAt = (await lastSeqOf(b, talk.id)) - 1;
      await feed.waitTalkSeq(talk.id, leftAt);
      await sendText(b, talk.id, "a is away");
      const rejoinAt = (await lastSeqOf(b, talk.id)) + 1;
      await b.talks.addParticipant({ chatId: talk.id, agentId: a.id });
      await sendText(b, talk.id, "a is back");
      const last = await lastSeqOf(b, talk.id);
      await feed.waitTalkSeq(talk.id, last);
      const seqs = seqsOf(feed.of(talk.id));
      expect(seqs).toEqual([leftAt, ...range(rejoinAt, last)]);
    } finally {
      await feed.abort();
    }
  });

  it("rejects a malformed cursor with INVALID_ARGUMENT", async () => {
    const [a] = (await agents(env, 1)) as [TestAgent];
    await new FeedWatcher(a, "not a cursor").expectEnd(Code.InvalidArgument);
  });
});

describe.each(backends.filter((b) => b === "postgres"))("WatchEvents across services on %s", (backend) => {
  const env = useService(backend, { live: { heartbeatMs: 1_000, gapCheckMs: 200, membershipCheckMs: 1_000 } });

  it("learns of talks and events written through a service whose bus it never hears", async () => {
    const other = await env.sibling();
    const [a, b] = (await agents(env, 2)) as [TestAgent, TestAgent];
    const home = await createTalk(a, [b]);
    const feed = new FeedWatcher(a);
    try {
      await feed.ready();
      const b2 = other.as(b);
      await sendText(b2, home.id, "from the other service");
      await feed.waitTalkSeq(home.id, await lastSeqOf(a, home.id), 3_000);
      // A talk created through the other service: the join's bus message never comes; the
      // feed's membership re-check (membershipCheckMs) finds it.
      const created = await createTalk(b2, [a]);
      await sendText(b2, created.id, "are you there");
      await feed.waitTalkSeq(created.id, await lastSeqOf(b, created.id), 12_000);
      const events = feed.of(created.id);
      expect(events[0]?.payload.case === "participantJoined" && events[0].payload.value.participant?.ownerId).toBe(a.id);
      expectContiguous(events, Number(must(events[0]).seq), await lastSeqOf(b, created.id));
    } finally {
      await feed.abort();
    }
  });
});
