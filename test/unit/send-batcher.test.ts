/**
 * Group commit of sends (SendBatcher) against an in-memory store with the semantics of
 * sends/send-store.ts as service.ts wires it: a read of talks, members and parents; a commit
 * that applies to a talk only while its head is the one planned from (compare-and-set), and
 * fails whole on a reused client_message_id; an unreachable database as Unavailable. The store
 * can be told to move a talk's head before a commit (another process wins the race) or to fail.
 */
import { beforeEach, describe, expect, it, vi } from "vitest";
import { FailedPrecondition, InvalidArgument, NotFound, Unavailable } from "../../src/domain/model/errors.js";
import { eventOf, type EncodedEvent } from "../../src/bus/event-codec.js";
import type { TalkEvent } from "../../src/domain/model/events.js";
import type { AgentId, MessageId, TalkId } from "../../src/domain/model/ids.js";
import type { Identity } from "../../src/domain/model/identity.js";
import type { Message, Talk } from "../../src/domain/model/model.js";
import { SendBatcher, type BatchStore, type SendBatcherOptions } from "../../src/sends/send-batcher.js";
import type { SendRequest } from "../../src/sends/send-request.js";
import type { HeadMove, SendTargets } from "../../src/sends/send-store.js";
import { ann, bob, created, customer, groupTalk, mid, now, otherCustomer, outsider, tid } from "./send-fixtures.js";

/** A store error with a Postgres SQLSTATE, as the driver throws it. */
function driverError(code: string): Error {
  return Object.assign(new Error(`driver error ${code}`), { code });
}

class FakeSendStore implements BatchStore {
  readonly talks = new Map<TalkId, Talk>();
  readonly members = new Map<TalkId, Set<AgentId>>();
  /** Messages stored, in commit order (parents included). */
  readonly messages: Message[] = [];
  readonly reads: { talkIds: TalkId[]; agentIds: AgentId[]; parentIds: MessageId[] }[] = [];
  readonly commits: { moves: HeadMove[]; messages: Message[]; events: TalkEvent[] }[] = [];
  /** The encoded events each commit was given, to compare with what was published. */
  readonly encoded: EncodedEvent[] = [];
  /** Runs before each commit applies (the commit's index given): a rival write, a wait, a failure. */
  beforeCommit: (index: number) => void | Promise<void> = () => {};
  beforeRead: () => void = () => {};
  /** The locking path's calls, in order. */
  readonly alone: SendRequest[] = [];

  addTalk(id: TalkId, members: readonly Identity[], fields: Partial<Talk> = {}): void {
    this.talks.set(id, groupTalk(id, { memberCount: members.length, ...fields }));
    this.members.set(id, new Set(members.map((m) => m.agentId)));
  }

  /** A message already in a talk (to name as a parent, or a client_message_id used before). */
  addMessage(id: MessageId, talkId: TalkId, sender: Identity, clientMessageId: string | null = null): Message {
    const talk = this.talk(talkId);
    const seq = talk.lastSeq + 1;
    this.talks.set(talkId, { ...talk, lastSeq: seq });
    const message: Message = {
      id,
      customerId: talk.customerId,
      ownerType: "agent",
      ownerId: sender.agentId,
      chatId: talkId,
      parentId: null,
      type: "normal",
      text: `stored ${id}`,
      medias: [],
      reactions: [],
      clientMessageId,
      seq,
      tmCreate: created,
      tmUpdate: created,
      tmDelete: null,
    };
    this.messages.push(message);
    return message;
  }

  /** Another process (or another kind of write) moves the talk's head. */
  rivalWrite(talkId: TalkId, fields: Partial<Talk> = {}): void {
    const talk = this.talk(talkId);
    this.talks.set(talkId, { ...talk, ...fields, lastSeq: talk.lastSeq + 1 });
  }

  talk(id: TalkId): Talk {
    const talk = this.talks.get(id);
    if (talk === undefined) throw new Error(`no talk ${id}`);
    return talk;
  }

  textsOf(talkId: TalkId): string[] {
    return this.messages.filter((m) => m.chatId === talkId).map((m) => m.text);
  }

  async readSendTargets(talkIds: readonly TalkId[], agentIds: readonly AgentId[], parentIds: readonly MessageId[]): Promise<SendTargets> {
    this.reads.push({ talkIds: [...talkIds], agentIds: [...agentIds], parentIds: [...parentIds] });
    await Promise.resolve();
    this.beforeRead();
    const talks = new Map<TalkId, { talk: Talk; members: Set<AgentId> }>();
    for (const id of talkIds) {
      const talk = this.talks.get(id);
      if (talk === undefined || talk.tmDelete !== null) continue;
      const members = this.members.get(id) ?? new Set<AgentId>();
      talks.set(id, { talk, members: new Set(agentIds.filter((a) => members.has(a))) });
    }
    const parentTalks = new Map<MessageId, TalkId>();
    for (const id of parentIds) {
      const message = this.messages.find((m) => m.id === id);
      if (message !== undefined) parentTalks.set(id, message.chatId);
    }
    return { talks, parentTalks };
  }

  async commitSends(moves: readonly HeadMove[], messages: readonly Message[], encoded: readonly EncodedEvent[]): Promise<Set<TalkId>> {
    const index = this.commits.length;
    this.encoded.push(...encoded);
    this.commits.push({ moves: [...moves], messages: [...messages], events: encoded.map(eventOf) });
    await this.beforeCommit(index);
    const advanced = new Set<TalkId>();
    for (const move of moves) {
      const talk = this.talks.get(move.talk.id);
      if (talk === undefined || talk.lastSeq !== move.expectedSeq || talk.tmDelete !== null || talk.status !== "active") continue;
      advanced.add(move.talk.id);
    }
    const written = messages.filter((m) => advanced.has(m.chatId));
    for (const m of written) {
      const used = this.messages.some(
        (s) => m.clientMessageId !== null && s.chatId === m.chatId && s.ownerId === m.ownerId && s.clientMessageId === m.clientMessageId,
      );
      if (used) throw driverError("23505");
    }
    for (const move of moves) {
      if (advanced.has(move.talk.id)) {
        const talk = this.talk(move.talk.id);
        this.talks.set(move.talk.id, { ...talk, lastSeq: move.talk.lastSeq, tmActivity: move.talk.tmActivity });
      }
    }
    this.messages.push(...written);
    return advanced;
  }

  /** The locking path, one send at a time: the rules read afresh, a reused client_message_id answered with its first message. */
  async sendAlone(request: SendRequest): Promise<Message> {
    this.alone.push(request);
    await Promise.resolve();
    const talk = this.talks.get(request.talkId);
    if (
      talk === undefined ||
      talk.customerId !== request.caller.customerId ||
      !this.members.get(request.talkId)?.has(request.caller.agentId)
    ) {
      throw new NotFound("talk", request.talkId);
    }
    const first = this.messages.find(
      (m) =>
        request.clientMessageId !== null &&
        m.chatId === request.talkId &&
        m.ownerId === request.caller.agentId &&
        m.clientMessageId === request.clientMessageId,
    );
    if (first !== undefined) return first;
    if (talk.status !== "active") throw new FailedPrecondition("the talk is closed; reopen it first");
    const message = this.addMessage(mid(9000 + this.alone.length), request.talkId, request.caller, request.clientMessageId);
    const sent = { ...message, text: `alone: ${request.text}` };
    this.messages[this.messages.length - 1] = sent;
    return sent;
  }
}

let store: FakeSendStore;
let published: TalkEvent[];
/** How often the batcher published (an empty publish is a wasted call to every watcher). */
let publishes: number;
let committed: number[];

beforeEach(() => {
  store = new FakeSendStore();
  published = [];
  publishes = 0;
  committed = [];
});

function batcher(options: Partial<SendBatcherOptions> = {}): SendBatcher {
  const events = {
    publish: (committed: readonly (TalkEvent | EncodedEvent)[]) => {
      publishes++;
      // Encoded once: the bus gets the very encodings the statement wrote.
      for (const event of committed) expect(store.encoded).toContain(event);
      published.push(...committed.map(eventOf));
    },
  };
  return new SendBatcher(
    { store, events, now: () => now },
    {
      maxBatch: 100,
      maxInFlight: 1,
      parallelAfter: 1,
      onCommit: (size) => committed.push(size),
      ...options,
    },
  );
}

interface SendOptions {
  readonly parentId?: MessageId;
  readonly clientMessageId?: string;
}

function send(b: SendBatcher, from: Identity, talkId: TalkId, text: string, options: SendOptions = {}): Promise<Message> {
  return b.submit({
    caller: from,
    talkId,
    text,
    medias: [],
    parentId: options.parentId ?? null,
    clientMessageId: options.clientMessageId ?? null,
  });
}

/** Settles a send into its message or its error, so a batch's outcomes can be compared at once. */
function settle(sending: Promise<Message>): Promise<Message | Error> {
  return sending.then(
    (message) => message,
    (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
  );
}

/** A gate a commit waits on until the test opens it. */
function gate(): { wait: Promise<void>; open(): void } {
  let open = () => {};
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

/** A few turns of the event loop: enough for a scheduled pump to have run, no clock involved. */
async function turns(n = 5): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

describe("SendBatcher: group commit", () => {
  it("commits concurrent sends in one statement and answers each caller with its own message", async () => {
    store.addTalk(tid(1), [ann, bob]);
    store.addTalk(tid(2), [ann]);
    const b = batcher();
    const results = await Promise.all([
      send(b, ann, tid(1), "one"),
      send(b, bob, tid(1), "two", { clientMessageId: "k2" }),
      send(b, ann, tid(2), "three"),
      send(b, ann, tid(1), "four"),
      send(b, ann, tid(2), "five", { clientMessageId: "k5" }),
    ]);

    expect(store.reads).toEqual([{ talkIds: [tid(1), tid(2)], agentIds: [ann.agentId, bob.agentId], parentIds: [] }]);
    expect(store.commits).toHaveLength(1);
    expect(committed).toEqual([5]);
    const expected: [Identity, TalkId, string, string | null, number][] = [
      [ann, tid(1), "one", null, 3],
      [bob, tid(1), "two", "k2", 4],
      [ann, tid(2), "three", null, 3],
      [ann, tid(1), "four", null, 5],
      [ann, tid(2), "five", "k5", 4],
    ];
    results.forEach((message, i) => {
      const [from, talkId, text, clientMessageId, seq] = expected[i] ?? [];
      expect(message, `send ${i}`).toMatchObject({
        customerId: customer,
        ownerType: "agent",
        ownerId: from?.agentId,
        chatId: talkId,
        parentId: null,
        type: "normal",
        text,
        clientMessageId,
        seq,
        tmCreate: now,
      });
    });
    expect(new Set(results.map((m) => m.id)).size).toBe(5);
    expect(store.messages).toEqual(results);
    expect(store.talk(tid(1))).toMatchObject({ lastSeq: 5, tmActivity: now });
    expect(store.talk(tid(2))).toMatchObject({ lastSeq: 4, tmActivity: now });
    // Each message's event is published once, after the commit, with the sender as actor.
    expect(published.map((e) => [e.type, e.seq, e.chatId, "message" in e ? e.message : undefined, e.actor])).toEqual(
      [0, 1, 3, 2, 4].map((i) => {
        const m = results[i] as Message;
        return ["message_created", m.seq, m.chatId, m, { ownerType: "agent", ownerId: m.ownerId }];
      }),
    );
    expect(store.alone).toEqual([]);
  });

  it("plans later batches from what it knows: no read for known talks and parents, heads continued", async () => {
    store.addTalk(tid(1), [ann, bob]);
    store.addMessage(mid(1), tid(1), ann);
    const b = batcher();
    await send(b, ann, tid(1), "first", { parentId: mid(1) });
    expect(store.reads).toEqual([{ talkIds: [tid(1)], agentIds: [ann.agentId], parentIds: [mid(1)] }]);

    const second = await send(b, ann, tid(1), "second", { parentId: mid(1) });
    expect(store.reads).toHaveLength(1);
    expect(second).toMatchObject({ seq: 5, parentId: mid(1), text: "second" });
    expect(store.commits[1]?.moves).toEqual([{ expectedSeq: 4, talk: expect.objectContaining({ lastSeq: 5 }) as Talk }]);

    // A sender it does not know in the talk has the talk read again, with every sender of it asked about.
    await Promise.all([send(b, ann, tid(1), "third"), send(b, bob, tid(1), "fourth")]);
    expect(store.reads[1]).toEqual({ talkIds: [tid(1)], agentIds: [ann.agentId, bob.agentId], parentIds: [] });
    expect(store.textsOf(tid(1))).toEqual([`stored ${mid(1)}`, "first", "second", "third", "fourth"]);
  });

  it("sends a lone send at once, and sends that arrive while a batch commits as the next batch", async () => {
    store.addTalk(tid(1), [ann]);
    store.addTalk(tid(2), [ann]);
    const hold = gate();
    store.beforeCommit = (index) => (index === 0 ? hold.wait : undefined);
    const b = batcher();
    const first = send(b, ann, tid(1), "alone");
    await vi.waitFor(() => expect(store.commits).toHaveLength(1));
    const later = [send(b, ann, tid(1), "next 1"), send(b, ann, tid(2), "next 2")];
    await turns();
    expect(store.commits).toHaveLength(1);
    hold.open();
    await Promise.all([first, ...later]);
    expect(store.commits.map((c) => c.messages.map((m) => m.text))).toEqual([["alone"], ["next 1", "next 2"]]);
    expect(store.reads.map((r) => r.talkIds)).toEqual([[tid(1)], [tid(2)]]);
    expect(committed).toEqual([1, 2]);
  });

  it("works without an onCommit listener", async () => {
    store.addTalk(tid(1), [ann]);
    const b = new SendBatcher({ store, events: { publish: () => {} }, now: () => now }, { maxBatch: 10, maxInFlight: 1, parallelAfter: 1 });
    expect(await send(b, ann, tid(1), "quiet")).toMatchObject({ text: "quiet", seq: 3 });
  });

  it("asks only about the senders of the talks it reads", async () => {
    store.addTalk(tid(1), [ann, bob]);
    store.addTalk(tid(2), [bob]);
    const b = batcher();
    await send(b, ann, tid(1), "known from now on");
    await Promise.all([send(b, ann, tid(1), "known"), send(b, bob, tid(2), "read")]);
    expect(store.reads[1]).toEqual({ talkIds: [tid(2)], agentIds: [bob.agentId], parentIds: [] });
  });

  it("puts at most maxBatch sends in a batch, in arrival order", async () => {
    for (let n = 1; n <= 5; n++) store.addTalk(tid(n), [ann]);
    const b = batcher({ maxBatch: 2 });
    await Promise.all([1, 2, 3, 4, 5].map((n) => send(b, ann, tid(n), `m${n}`)));
    expect(store.commits.map((c) => c.messages.map((m) => m.text))).toEqual([["m1", "m2"], ["m3", "m4"], ["m5"]]);
  });

  it("keeps a talk in one batch at a time while other talks' batches commit beside it", async () => {
    store.addTalk(tid(1), [ann]);
    store.addTalk(tid(2), [ann]);
    const hold = gate();
    store.beforeCommit = (index) => (index === 0 ? hold.wait : undefined);
    const b = batcher({ maxInFlight: 2, parallelAfter: 1 });
    const first = send(b, ann, tid(1), "x1");
    await vi.waitFor(() => expect(store.commits).toHaveLength(1));
    const same = send(b, ann, tid(1), "x2");
    const other = send(b, ann, tid(2), "y");
    await other;
    expect(store.commits.map((c) => c.messages.map((m) => m.text))).toEqual([["x1"], ["y"]]);
    hold.open();
    expect(await same).toMatchObject({ text: "x2", seq: 4 });
    expect((await first).seq).toBe(3);
    expect(store.commits.map((c) => c.messages.map((m) => m.text))).toEqual([["x1"], ["y"], ["x2"]]);
  });

  it("starts a second batch beside a committing one only once parallelAfter sends wait", async () => {
    for (let n = 1; n <= 3; n++) store.addTalk(tid(n), [ann]);
    const hold = gate();
    store.beforeCommit = (index) => (index === 0 ? hold.wait : undefined);
    const b = batcher({ maxInFlight: 2, parallelAfter: 2 });
    const first = send(b, ann, tid(1), "x");
    await vi.waitFor(() => expect(store.commits).toHaveLength(1));
    const y = send(b, ann, tid(2), "y");
    await turns();
    expect(store.commits).toHaveLength(1);
    const z = send(b, ann, tid(3), "z");
    await vi.waitFor(() => expect(store.commits).toHaveLength(2));
    expect(store.commits[1]?.messages.map((m) => m.text)).toEqual(["y", "z"]);
    hold.open();
    await Promise.all([first, y, z]);
  });

  it("never has more than maxInFlight batches committing", async () => {
    for (let n = 1; n <= 4; n++) store.addTalk(tid(n), [ann]);
    const holds = [gate(), gate()];
    store.beforeCommit = (index) => holds[index]?.wait;
    const b = batcher({ maxInFlight: 2, parallelAfter: 1 });
    const sends = [send(b, ann, tid(1), "a")];
    await vi.waitFor(() => expect(store.commits).toHaveLength(1));
    sends.push(send(b, ann, tid(2), "b"));
    await vi.waitFor(() => expect(store.commits).toHaveLength(2));
    sends.push(send(b, ann, tid(3), "c"), send(b, ann, tid(4), "d"));
    await turns();
    expect(store.commits).toHaveLength(2);
    holds[0]?.open();
    await vi.waitFor(() => expect(store.commits).toHaveLength(3));
    expect(store.commits[2]?.messages.map((m) => m.text)).toEqual(["c", "d"]);
    holds[1]?.open();
    await Promise.all(sends);
  });
});

describe("SendBatcher: good and bad sends in one batch", () => {
  it("refuses each bad send with its own error and commits the good ones", async () => {
    store.addTalk(tid(1), [ann, bob]);
    store.addTalk(tid(2), [ann]);
    store.addTalk(tid(3), [ann], { status: "closed" });
    store.addTalk(tid(4), [ann], { customerId: otherCustomer });
    store.addTalk(tid(5), [ann], { tmDelete: created });
    const parentHere = store.addMessage(mid(1), tid(1), ann);
    store.addMessage(mid(2), tid(2), ann);
    const b = batcher();
    const outcomes = await Promise.all([
      settle(send(b, ann, tid(1), "ok 1")),
      settle(send(b, outsider, tid(1), "not a member")),
      settle(send(b, ann, tid(99), "no such talk")),
      settle(send(b, ann, tid(3), "closed")),
      settle(send(b, ann, tid(1), "parent elsewhere", { parentId: mid(2) })),
      settle(send(b, ann, tid(1), "reply", { parentId: parentHere.id })),
      settle(send(b, ann, tid(4), "other customer's talk")),
      settle(send(b, bob, tid(1), "ok 2")),
      settle(send(b, ann, tid(1), "no such parent", { parentId: mid(3) })),
      settle(send(b, ann, tid(5), "deleted talk")),
    ]);
    const summary = outcomes.map((o) => (o instanceof Error ? [o.constructor.name, o.message] : [o.text, o.seq, o.parentId]));
    expect(summary).toEqual([
      ["ok 1", 4, null],
      ["NotFound", `talk ${tid(1)} not found`],
      ["NotFound", `talk ${tid(99)} not found`],
      ["FailedPrecondition", "the talk is closed; reopen it first"],
      ["InvalidArgument", "parent_id: must name a message of the same talk"],
      ["reply", 5, mid(1)],
      ["NotFound", `talk ${tid(4)} not found`],
      ["ok 2", 6, null],
      ["InvalidArgument", "parent_id: must name a message of the same talk"],
      ["NotFound", `talk ${tid(5)} not found`],
    ]);
    expect(outcomes[4]).toBeInstanceOf(InvalidArgument);
    expect(store.textsOf(tid(1))).toEqual([`stored ${mid(1)}`, "ok 1", "reply", "ok 2"]);
    expect(store.commits).toHaveLength(1);
    expect(store.commits[0]?.moves.map((m) => m.talk.id)).toEqual([tid(1)]);
    expect(committed).toEqual([3]);
    expect(published).toHaveLength(3);
    expect(store.alone).toEqual([]);
  });

  it("answers every send of a client_message_id used twice in a batch with its first message", async () => {
    store.addTalk(tid(1), [ann, bob]);
    const b = batcher();
    const [first, again, other] = await Promise.all([
      send(b, ann, tid(1), "first", { clientMessageId: "k" }),
      send(b, ann, tid(1), "again", { clientMessageId: "k" }),
      send(b, bob, tid(1), "bob's", { clientMessageId: "k" }),
    ]);
    expect(again).toBe(first);
    expect(first).toMatchObject({ text: "first", seq: 3 });
    expect(other).toMatchObject({ text: "bob's", seq: 4, ownerId: bob.agentId });
    expect(store.textsOf(tid(1))).toEqual(["first", "bob's"]);
    expect(committed).toEqual([2]);
  });

  it("sends a retry into a closed talk the locking way, which knows the first message", async () => {
    store.addTalk(tid(1), [ann]);
    const earlier = store.addMessage(mid(1), tid(1), ann, "k");
    store.rivalWrite(tid(1), { status: "closed" });
    const b = batcher();
    const [retry, fresh] = await Promise.all([
      settle(send(b, ann, tid(1), "retry", { clientMessageId: "k" })),
      settle(send(b, ann, tid(1), "new")),
    ]);
    expect(retry).toBe(earlier);
    expect(fresh).toBeInstanceOf(FailedPrecondition);
    expect(store.alone.map((r) => r.text)).toEqual(["retry"]);
    expect(store.commits.flatMap((c) => c.messages)).toEqual([]);
    // Straight to the locking path: not re-planned as if the talk had moved.
    expect(store.reads).toHaveLength(1);
  });

  it("sends each send of a batch the locking way when the statement fails on a client_message_id used before", async () => {
    store.addTalk(tid(1), [ann, bob]);
    const earlier = store.addMessage(mid(1), tid(1), ann, "k");
    const b = batcher();
    const [retry, other] = await Promise.all([send(b, ann, tid(1), "retry", { clientMessageId: "k" }), send(b, bob, tid(1), "other")]);
    expect(retry).toBe(earlier);
    expect(other).toMatchObject({ text: "alone: other", ownerId: bob.agentId });
    expect(store.alone.map((r) => r.text)).toEqual(["retry", "other"]);
    expect(committed).toEqual([]);
    expect(published).toEqual([]);
  });

  it("sends the batch the locking way when the read fails for a reason other than the database being down", async () => {
    store.addTalk(tid(1), [ann]);
    store.beforeRead = () => {
      throw new Error("something unforeseen");
    };
    const b = batcher();
    expect(await send(b, ann, tid(1), "hi")).toMatchObject({ text: "alone: hi" });
    expect(store.commits).toEqual([]);
  });

  it("fails every send of the batch with Unavailable when the database cannot be reached", async () => {
    store.addTalk(tid(1), [ann, bob]);
    store.beforeCommit = () => {
      throw new Unavailable("the database is unavailable");
    };
    const b = batcher();
    const outcomes = await Promise.all([settle(send(b, ann, tid(1), "x")), settle(send(b, bob, tid(1), "y"))]);
    for (const outcome of outcomes) expect(outcome).toBeInstanceOf(Unavailable);
    expect(store.alone).toEqual([]);
    expect(store.commits).toHaveLength(1);
    expect(published).toEqual([]);
  });
});

describe("SendBatcher: an unreachable database", () => {
  it("fails every send of the batch with Unavailable when the read cannot reach it, without the locking path", async () => {
    store.addTalk(tid(1), [ann]);
    store.addTalk(tid(2), [bob]);
    store.beforeRead = () => {
      throw new Unavailable("the database is unavailable");
    };
    const b = batcher();
    const outcomes = await Promise.all([settle(send(b, ann, tid(1), "x")), settle(send(b, bob, tid(2), "y"))]);
    for (const outcome of outcomes) expect(outcome).toBeInstanceOf(Unavailable);
    expect(store.commits).toEqual([]);
    expect(store.alone).toEqual([]);
  });

  it("fails only the sends still pending when a later try cannot reach it; the settled keep their answers", async () => {
    store.addTalk(tid(1), [ann]);
    store.addTalk(tid(2), [ann]);
    store.beforeCommit = (index) => {
      if (index === 0) store.rivalWrite(tid(2));
      else throw new Unavailable("the database is unavailable");
    };
    const b = batcher();
    const [x, y] = await Promise.all([settle(send(b, ann, tid(1), "x")), settle(send(b, ann, tid(2), "y"))]);
    expect(x).toMatchObject({ text: "x", seq: 3 });
    expect(y).toBeInstanceOf(Unavailable);
    expect(published.map((e) => e.chatId)).toEqual([tid(1)]);
    expect(store.alone).toEqual([]);
  });
});

describe("SendBatcher: lost races", () => {
  it("re-reads and re-plans a known talk whose head another process moved", async () => {
    store.addTalk(tid(1), [ann]);
    const b = batcher();
    const x = await send(b, ann, tid(1), "x");
    store.rivalWrite(tid(1));
    const y = await send(b, ann, tid(1), "y");
    expect(x.seq).toBe(3);
    expect(y).toMatchObject({ text: "y", seq: 5 });
    expect(store.reads).toHaveLength(2);
    expect(store.commits.map((c) => c.moves.map((m) => m.expectedSeq))).toEqual([[2], [3], [4]]);
    expect(committed).toEqual([1, 1]);
    expect(published.map((e) => e.seq)).toEqual([3, 5]);
    expect(store.textsOf(tid(1))).toEqual(["x", "y"]);
  });

  it("publishes and counts only the talks that advanced, and retries the others", async () => {
    store.addTalk(tid(1), [ann]);
    store.addTalk(tid(2), [ann]);
    store.beforeCommit = (index) => {
      if (index === 0) store.rivalWrite(tid(2));
    };
    const b = batcher();
    const [x, y] = await Promise.all([send(b, ann, tid(1), "x"), send(b, ann, tid(2), "y")]);
    expect(x).toMatchObject({ seq: 3, chatId: tid(1) });
    expect(y).toMatchObject({ seq: 4, chatId: tid(2) });
    expect(committed).toEqual([1, 1]);
    expect(published.map((e) => [e.chatId, e.seq])).toEqual([
      [tid(1), 3],
      [tid(2), 4],
    ]);
    expect(store.reads.map((r) => r.talkIds)).toEqual([[tid(1), tid(2)], [tid(2)]]);
  });

  it("re-plans a repeated client_message_id with its talk and still writes it once", async () => {
    store.addTalk(tid(1), [ann]);
    store.beforeCommit = (index) => {
      if (index === 0) store.rivalWrite(tid(1));
    };
    const b = batcher();
    const [first, again] = await Promise.all([
      send(b, ann, tid(1), "first", { clientMessageId: "k" }),
      send(b, ann, tid(1), "again", { clientMessageId: "k" }),
    ]);
    expect(again).toBe(first);
    expect(first).toMatchObject({ text: "first", seq: 4 });
    expect(store.textsOf(tid(1))).toEqual(["first"]);
    expect(store.commits.map((c) => c.messages.map((m) => m.text))).toEqual([["first"], ["first"]]);
  });

  it("settles refused sends at once and re-plans only the good sends of a talk that moved", async () => {
    store.addTalk(tid(1), [ann]);
    store.beforeCommit = (index) => {
      if (index === 0) store.rivalWrite(tid(1));
    };
    const b = batcher();
    const outcomes = await Promise.all([
      settle(send(b, ann, tid(1), "good")),
      settle(send(b, outsider, tid(1), "outsider")),
      settle(send(b, ann, tid(1), "bad parent", { parentId: mid(7) })),
    ]);
    expect(outcomes[0]).toMatchObject({ text: "good", seq: 4 });
    expect(outcomes[1]).toBeInstanceOf(NotFound);
    expect(outcomes[2]).toBeInstanceOf(InvalidArgument);
    // The second try holds the good send alone: the refused were not planned again.
    expect(store.commits.map((c) => c.messages.map((m) => m.text))).toEqual([["good"], ["good"]]);
    expect(store.reads.map((r) => [r.talkIds, r.agentIds])).toEqual([
      [[tid(1)], [ann.agentId, outsider.agentId]],
      [[tid(1)], [ann.agentId]],
    ]);
  });

  it("falls back to the locking path, one send at a time, after losing the race three times", async () => {
    store.addTalk(tid(1), [ann, bob]);
    store.addTalk(tid(2), [ann]);
    store.beforeCommit = () => store.rivalWrite(tid(1));
    const b = batcher();
    const [x, y, z] = await Promise.all([send(b, ann, tid(1), "x"), send(b, bob, tid(1), "y"), send(b, ann, tid(2), "z")]);
    expect(store.commits).toHaveLength(3);
    expect(store.reads.map((r) => r.talkIds)).toEqual([[tid(1), tid(2)], [tid(1)], [tid(1)]]);
    expect(store.alone.map((r) => r.text)).toEqual(["x", "y"]);
    expect(x).toMatchObject({ text: "alone: x", ownerId: ann.agentId });
    expect(y).toMatchObject({ text: "alone: y", ownerId: bob.agentId });
    expect(z).toMatchObject({ text: "z", seq: 3 });
    expect(committed).toEqual([1]);
    expect(publishes).toBe(1);
  });

  it("does not refuse a send from a talk it knew as closed: it reads the talk again, which was reopened", async () => {
    store.addTalk(tid(1), [ann], { status: "closed" });
    const b = batcher();
    await expect(send(b, ann, tid(1), "while closed")).rejects.toBeInstanceOf(FailedPrecondition);
    store.rivalWrite(tid(1), { status: "active" });
    const [one, two] = await Promise.all([send(b, ann, tid(1), "one"), send(b, ann, tid(1), "two")]);
    expect(one).toMatchObject({ text: "one", seq: 4 });
    expect(two).toMatchObject({ text: "two", seq: 5 });
    expect(store.reads).toHaveLength(2);
    expect(store.alone).toEqual([]);
  });

  it("refuses a send to a talk it knew as active once a fresh read finds it closed", async () => {
    store.addTalk(tid(1), [ann]);
    const b = batcher();
    await send(b, ann, tid(1), "open");
    store.rivalWrite(tid(1), { status: "closed" });
    await expect(send(b, ann, tid(1), "closed now")).rejects.toBeInstanceOf(FailedPrecondition);
    expect(store.reads).toHaveLength(2);
  });
});

describe("SendBatcher: what a batch knew stays known while it reads (issue 13)", () => {
  it("does not lose a known talk to an eviction caused by the talks the same batch reads", async () => {
    for (let n = 1; n <= 3; n++) store.addTalk(tid(n), [ann]);
    const b = batcher({ knownTalks: 2 });
    await Promise.all([send(b, ann, tid(1), "a1"), send(b, ann, tid(2), "a2")]);
    const outcomes = await Promise.all([settle(send(b, ann, tid(1), "known")), settle(send(b, ann, tid(3), "new"))]);
    expect(outcomes).toEqual([expect.objectContaining({ text: "known", seq: 4 }), expect.objectContaining({ text: "new", seq: 3 })]);
    expect(store.reads.map((r) => r.talkIds)).toEqual([[tid(1), tid(2)], [tid(3)]]);
  });

  it("does not lose a known talk when the batch knows as many talks as it can remember and reads one more", async () => {
    for (let n = 1; n <= 3; n++) store.addTalk(tid(n), [ann]);
    const b = batcher({ knownTalks: 2 });
    await Promise.all([send(b, ann, tid(1), "a1"), send(b, ann, tid(2), "a2")]);
    const outcomes = await Promise.all([1, 2, 3].map((n) => settle(send(b, ann, tid(n), `b${n}`))));
    expect(outcomes.map((o) => (o instanceof Error ? o.message : [o.text, o.seq]))).toEqual([
      ["b1", 4],
      ["b2", 4],
      ["b3", 3],
    ]);
    expect(store.reads.map((r) => r.talkIds)).toEqual([[tid(1), tid(2)], [tid(3)]]);
  });

  it("plans every talk of a batch that reads more talks than it can remember", async () => {
    for (let n = 1; n <= 3; n++) store.addTalk(tid(n), [ann]);
    const b = batcher({ knownTalks: 2 });
    const outcomes = await Promise.all([1, 2, 3].map((n) => settle(send(b, ann, tid(n), `m${n}`))));
    expect(outcomes.map((o) => (o instanceof Error ? o.message : o.text))).toEqual(["m1", "m2", "m3"]);
  });

  it("does not lose a known parent message to an eviction caused by the parents the same batch reads", async () => {
    store.addTalk(tid(1), [ann]);
    for (let n = 1; n <= 3; n++) store.addMessage(mid(n), tid(1), ann);
    const b = batcher({ knownTalks: 2 });
    await Promise.all([send(b, ann, tid(1), "r1", { parentId: mid(1) }), send(b, ann, tid(1), "r2", { parentId: mid(2) })]);
    const outcomes = await Promise.all([
      settle(send(b, ann, tid(1), "known parent", { parentId: mid(1) })),
      settle(send(b, ann, tid(1), "new parent", { parentId: mid(3) })),
    ]);
    expect(outcomes.map((o) => (o instanceof Error ? o.message : o.text))).toEqual(["known parent", "new parent"]);
    expect(store.reads.map((r) => r.parentIds)).toEqual([[mid(1), mid(2)], [mid(3)]]);
  });
});
