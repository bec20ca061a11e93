/**
 * planBatch: one batch of sends judged against an immutable snapshot, and the messages,
 * events and head moves of those to write. No store: the snapshot is all it sees.
 */
import { describe, expect, it } from "vitest";
import { DomainError, FailedPrecondition, InvalidArgument, NotFound } from "../../src/domain/model/errors.js";
import type { MessageId, TalkId } from "../../src/domain/model/ids.js";
import type { Identity } from "../../src/domain/model/identity.js";
import type { Talk } from "../../src/domain/model/model.js";
import type { KnownTalk } from "../../src/sends/known-talks.js";
import { planBatch, type Planned, type Snapshot } from "../../src/sends/plan-batch.js";
import type { SendRequest } from "../../src/sends/send-request.js";
import { ann, bob, groupTalk, mid, now, tid } from "./send-fixtures.js";

function known(id: TalkId, members: readonly Identity[], fields: Partial<Talk> = {}): KnownTalk {
  return { talk: groupTalk(id, { memberCount: members.length, ...fields }), members: new Set(members.map((m) => m.agentId)) };
}

function snapshot(talks: readonly KnownTalk[], options: { parents?: [MessageId, TalkId][]; fresh?: TalkId[] } = {}): Snapshot {
  return {
    talks: new Map(talks.map((t) => [t.talk.id, t])),
    parents: new Map(options.parents ?? []),
    fresh: new Set(options.fresh ?? talks.map((t) => t.talk.id)),
  };
}

function send(from: Identity, talkId: TalkId, text: string, fields: Partial<SendRequest> = {}): SendRequest {
  return { caller: from, talkId, text, medias: [], parentId: null, clientMessageId: null, ...fields };
}

/** Each result as its text and seq, its error's class and text, or its marker. */
function outline(results: readonly Planned[]): unknown[] {
  return results.map((r) => (r instanceof DomainError ? [r.constructor.name, r.message] : typeof r === "string" ? r : [r.text, r.seq]));
}

let clockReads = 0;
const clock = () => {
  clockReads++;
  return now;
};

describe("planBatch", () => {
  it("drafts each talk's messages from the head it knew and moves that head once, events in send order", () => {
    const talks = [known(tid(1), [ann, bob]), known(tid(2), [ann], { lastSeq: 9 })];
    const snap = snapshot(talks);
    clockReads = 0;
    const plan = planBatch([send(ann, tid(1), "a"), send(ann, tid(2), "b"), send(bob, tid(1), "c")], snap, clock);
    expect(outline(plan.results)).toEqual([
      ["a", 3],
      ["b", 10],
      ["c", 4],
    ]);
    expect(plan.messages.map((m) => m.text)).toEqual(["a", "b", "c"]);
    expect(plan.moves.map((m) => [m.talk.id, m.expectedSeq, m.talk.lastSeq, m.talk.tmActivity])).toEqual([
      [tid(1), 2, 4, now],
      [tid(2), 9, 10, now],
    ]);
    expect(plan.events.map((e) => [e.type, e.chatId, e.seq, e.actor])).toEqual([
      ["message_created", tid(1), 3, { ownerType: "agent", ownerId: ann.agentId }],
      ["message_created", tid(1), 4, { ownerType: "agent", ownerId: bob.agentId }],
      ["message_created", tid(2), 10, { ownerType: "agent", ownerId: ann.agentId }],
    ]);
    expect(plan.results[2]).toMatchObject({ ownerId: bob.agentId, chatId: tid(1), tmCreate: now });
    expect(plan.stale.size).toBe(0);
    // The clock once per talk written; the snapshot's talks untouched.
    expect(clockReads).toBe(2);
    expect(snap.talks.get(tid(1))?.talk.lastSeq).toBe(2);
  });

  it("gives each bad send its own error and plans the good ones around it, moving only talks written", () => {
    const talks = [known(tid(1), [ann]), known(tid(2), [bob]), known(tid(3), [ann], { status: "closed" })];
    const plan = planBatch(
      [
        send(ann, tid(1), "ok"),
        send(ann, tid(2), "not a member"),
        send(ann, tid(9), "unknown talk"),
        send(ann, tid(3), "closed"),
        send(ann, tid(1), "reply elsewhere", { parentId: mid(2) }),
        send(ann, tid(1), "reply", { parentId: mid(1) }),
      ],
      snapshot(talks, {
        parents: [
          [mid(1), tid(1)],
          [mid(2), tid(2)],
        ],
        fresh: [tid(1), tid(2), tid(3), tid(9)],
      }),
      clock,
    );
    expect(outline(plan.results)).toEqual([
      ["ok", 3],
      ["NotFound", `talk ${tid(2)} not found`],
      ["NotFound", `talk ${tid(9)} not found`],
      ["FailedPrecondition", "the talk is closed; reopen it first"],
      ["InvalidArgument", "parent_id: must name a message of the same talk"],
      ["reply", 4],
    ]);
    expect(plan.results[1]).toBeInstanceOf(NotFound);
    expect(plan.results[3]).toBeInstanceOf(FailedPrecondition);
    expect(plan.results[4]).toBeInstanceOf(InvalidArgument);
    expect(plan.moves.map((m) => m.talk.id)).toEqual([tid(1)]);
    expect(plan.messages.map((m) => m.text)).toEqual(["ok", "reply"]);
    expect(plan.events).toHaveLength(2);
  });

  it("answers a client_message_id repeated in the batch with the first message, per talk and sender", () => {
    const plan = planBatch(
      [
        send(ann, tid(1), "first", { clientMessageId: "k" }),
        send(ann, tid(1), "again", { clientMessageId: "k" }),
        send(bob, tid(1), "bob's", { clientMessageId: "k" }),
        send(ann, tid(2), "other talk", { clientMessageId: "k" }),
        send(ann, tid(1), "other key", { clientMessageId: "k2" }),
        send(ann, tid(1), "no key"),
        send(ann, tid(1), "no key again"),
      ],
      snapshot([known(tid(1), [ann, bob]), known(tid(2), [ann])]),
      clock,
    );
    expect(plan.results[1]).toBe(plan.results[0]);
    expect(outline(plan.results)).toEqual([
      ["first", 3],
      ["first", 3],
      ["bob's", 4],
      ["other talk", 3],
      ["other key", 5],
      ["no key", 6],
      ["no key again", 7],
    ]);
    expect(plan.messages.map((m) => m.text)).toEqual(["first", "bob's", "other talk", "other key", "no key", "no key again"]);
    expect(plan.events).toHaveLength(6);
  });

  it("plans no send to a remembered talk that looks closed: all of them are read again, the rest planned", () => {
    const plan = planBatch(
      [send(ann, tid(1), "x"), send(ann, tid(2), "y"), send(ann, tid(1), "z", { parentId: mid(5) })],
      snapshot([known(tid(1), [ann], { status: "closed" }), known(tid(2), [ann])], { fresh: [] }),
      clock,
    );
    expect(outline(plan.results)).toEqual(["read again", ["y", 3], "read again"]);
    expect([...plan.stale]).toEqual([tid(1)]);
    expect(plan.moves.map((m) => m.talk.id)).toEqual([tid(2)]);
  });

  it("re-reads every send to a talk found stale, even one that the rules alone would refuse", () => {
    const plan = planBatch(
      [send(ann, tid(1), "x"), send(bob, tid(1), "not a member")],
      snapshot([known(tid(1), [ann], { status: "closed" })], { fresh: [] }),
      clock,
    );
    expect(outline(plan.results)).toEqual(["read again", "read again"]);
  });

  it("sends a retry into a freshly read closed talk the locking way, and refuses a plain send there", () => {
    const plan = planBatch(
      [send(ann, tid(1), "retry", { clientMessageId: "k" }), send(ann, tid(1), "plain")],
      snapshot([known(tid(1), [ann], { status: "closed" })]),
      clock,
    );
    expect(outline(plan.results)).toEqual(["lock", ["FailedPrecondition", "the talk is closed; reopen it first"]]);
    expect(plan.moves).toEqual([]);
    expect(plan.stale.size).toBe(0);
  });

  it("plans nothing to write for an empty batch", () => {
    const plan = planBatch([], snapshot([]), clock);
    expect(plan).toEqual({ results: [], moves: [], messages: [], events: [], stale: new Set() });
  });
});
