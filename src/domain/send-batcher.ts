/**
 * Group commit for sends. Concurrent SendMessage calls in a process are committed together by
 * one statement that writes all their messages, events and talk heads, applied to each talk
 * only if its head has not moved since it was read (see store/send-store.ts). Talks are read
 * (membership, status, head) only when this process does not know them already (see
 * known-talks.ts), so a steady stream of sends costs one round trip per batch. A talk whose
 * head moved (another process or another kind of write got there first) is read again and its
 * sends planned again; after a few tries they take the locking path, one transaction each. A lone send goes at once; sends that
 * arrive while a batch is committing form the next batch, so batching adds no waiting of its
 * own. A talk is in at most one batch at a time, so the process's own batches never collide.
 */
import { guarded } from "../store/errors.js";
import { commitSends, readSendTargets, type HeadMove } from "../store/send-store.js";
import type { DomainDeps } from "./deps.js";
import { FailedPrecondition, InvalidArgument, NotFound, Unavailable } from "./errors.js";
import type { TalkEvent } from "./events.js";
import type { AgentId, MessageId, TalkId } from "./ids.js";
import type { Identity } from "./identity.js";
import type { Media, Message } from "./model.js";
import { draftMessage } from "./draft-message.js";
import { KnownTalks, type KnownTalk } from "./known-talks.js";
import { TalkChange } from "./talk-change.js";

/** A validated send. */
export interface SendRequest {
  readonly caller: Identity;
  readonly talkId: TalkId;
  readonly text: string;
  readonly medias: readonly Media[];
  readonly parentId: MessageId | null;
  readonly clientMessageId: string | null;
}

interface Pending extends SendRequest {
  resolve(message: Message): void;
  reject(error: unknown): void;
}

export interface SendBatcherOptions {
  /** Sends in one batch at most. */
  readonly maxBatch: number;
  /** Batches committing at once (each uses a database connection). */
  readonly maxInFlight: number;
  /**
   * While a batch commits, another starts only once this many sends wait: one batch at a time
   * makes the biggest batches (the least work per send), and a batch held up by a row lock
   * still does not hold up a growing queue behind it.
   */
  readonly parallelAfter: number;
  /** Told the number of messages every committed statement wrote (metrics). */
  readonly onCommit?: (size: number) => void;
  /** Talks (and parent messages) remembered for planning sends; 10,000 when not given. */
  readonly knownTalks?: number;
}

/** Tries of the compare-and-set path before a send takes the locking path. */
const optimisticTries = 3;

/** Talks a process remembers for planning sends (a few hundred bytes each). */
const defaultKnownTalks = 10_000;

function uniq<T>(values: Iterable<T>): T[] {
  return [...new Set(values)];
}

function idempotencyKey(talkId: TalkId, sender: AgentId, clientMessageId: string): string {
  return `${talkId}\n${sender}\n${clientMessageId}`;
}

/** One try at a batch: what each send got, and the sends whose talk moved meanwhile. */
interface Attempt {
  readonly settled: [Pending, Message | Error][];
  readonly retry: Pending[];
  /** Sends only the locking path can settle. */
  readonly alone: Pending[];
  readonly events: TalkEvent[];
  readonly written: number;
}

/** What a batch is planned from, captured once (see #learn). */
interface Snapshot {
  readonly talks: ReadonlyMap<TalkId, KnownTalk>;
  readonly parents: ReadonlyMap<MessageId, TalkId>;
  /** The talks read for this batch (the rest were known). */
  readonly fresh: ReadonlySet<TalkId>;
}

export class SendBatcher {
  readonly #queue: Pending[] = [];
  /** Talks with a batch in flight. */
  readonly #busy = new Set<TalkId>();
  readonly #known: KnownTalks;
  #inFlight = 0;
  #pumpScheduled = false;

  constructor(
    private readonly deps: DomainDeps,
    /** Sends one request in a locking transaction of its own. */
    private readonly sendAlone: (request: SendRequest) => Promise<Message>,
    private readonly options: SendBatcherOptions,
  ) {
    this.#known = new KnownTalks(options.knownTalks ?? defaultKnownTalks);
  }

  submit(request: SendRequest): Promise<Message> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ ...request, resolve, reject });
      this.#schedulePump();
    });
  }

  /**
   * Batches form after the event loop has taken in the requests that arrived meanwhile: on the
   * embedded database a statement runs on this thread, and without the wait every batch would
   * hold the one send that was parsed first.
   */
  #schedulePump(): void {
    if (this.#pumpScheduled) return;
    this.#pumpScheduled = true;
    setImmediate(() => {
      this.#pumpScheduled = false;
      this.#pump();
    });
  }

  #pump(): void {
    while (
      this.#inFlight < this.options.maxInFlight &&
      this.#queue.length > 0 &&
      (this.#inFlight === 0 || this.#queue.length >= this.options.parallelAfter)
    ) {
      const batch = this.#take();
      if (batch.length === 0) return;
      const talks = uniq(batch.map((p) => p.talkId));
      for (const talk of talks) this.#busy.add(talk);
      this.#inFlight++;
      void this.#commit(batch).finally(() => {
        for (const talk of talks) this.#busy.delete(talk);
        this.#inFlight--;
        this.#schedulePump();
      });
    }
  }

  /** Up to maxBatch queued sends whose talks have no batch in flight, in arrival order. */
  #take(): Pending[] {
    const batch: Pending[] = [];
    const rest: Pending[] = [];
    for (const pending of this.#queue) {
      if (batch.length < this.options.maxBatch && !this.#busy.has(pending.talkId)) batch.push(pending);
      else rest.push(pending);
    }
    this.#queue.splice(0, this.#queue.length, ...rest);
    return batch;
  }

  async #commit(batch: readonly Pending[]): Promise<void> {
    let pending = batch;
    const lonely: Pending[] = [];
    for (let tries = 0; tries < optimisticTries && pending.length > 0; tries++) {
      let attempt: Attempt;
      try {
        attempt = await guarded(() => this.#attempt(pending));
      } catch (error) {
        if (error instanceof Unavailable) {
          for (const p of pending) p.reject(error);
          return;
        }
        // A client_message_id used before (a retry) or anything unforeseen: each send goes
        // the exact locking way, and one send's trouble does not fail the others.
        break;
      }
      if (attempt.written > 0) this.options.onCommit?.(attempt.written);
      if (attempt.events.length > 0) this.deps.events.publish(attempt.events);
      for (const [p, result] of attempt.settled) {
        if (result instanceof Error) p.reject(result);
        else p.resolve(result);
      }
      pending = attempt.retry;
      lonely.push(...attempt.alone);
    }
    lonely.push(...pending);
    await Promise.all(lonely.map((p) => this.sendAlone(p).then(p.resolve, p.reject)));
  }

  async #attempt(batch: readonly Pending[]): Promise<Attempt> {
    const plan = this.#plan(batch, await this.#learn(batch));
    const moves: HeadMove[] = [...plan.changes.values()]
      .filter((c) => c.change.events.length > 0)
      .map((c) => ({ expectedSeq: c.expectedSeq, talk: c.change.talk }));
    const advanced = await commitSends(this.deps.db, moves, plan.messages, plan.events);
    for (const { change } of plan.changes.values()) {
      if (advanced.has(change.talk.id)) this.#known.advanced(change.talk);
      else this.#known.forget(change.talk.id);
    }
    const settled: [Pending, Message | Error][] = [];
    const retry: Pending[] = [];
    const alone: Pending[] = [];
    batch.forEach((p, i) => {
      const result = plan.results[i];
      if (result === undefined) return;
      if (result === "alone") alone.push(p);
      else if (result === "stale") retry.push(p);
      else if (result instanceof Error || advanced.has(p.talkId)) settled.push([p, result]);
      else retry.push(p);
    });
    return {
      settled,
      retry,
      alone,
      events: plan.events.filter((event) => advanced.has(event.chatId)),
      written: plan.messages.filter((message) => advanced.has(message.chatId)).length,
    };
  }

  /**
   * What the batch plans from: the talks (and parent messages) this process knew, and those it
   * read now, captured together. Reading can make the cache forget entries the batch counted
   * as known; planning from this snapshot, never from the cache again, keeps a known talk from
   * turning into NOT_FOUND, so only a fresh read may refuse a send.
   */
  async #learn(batch: readonly Pending[]): Promise<Snapshot> {
    const known = this.#known;
    const talkIds = uniq(batch.filter((r) => !known.knows(r.talkId, r.caller.agentId)).map((r) => r.talkId));
    const reading = new Set(talkIds);
    const talks = new Map<TalkId, KnownTalk>();
    for (const r of batch) {
      const target = reading.has(r.talkId) ? undefined : known.get(r.talkId);
      if (target !== undefined) talks.set(r.talkId, target);
    }
    const parents = new Map<MessageId, TalkId>();
    const parentIds: MessageId[] = [];
    for (const r of batch) {
      if (r.parentId === null) continue;
      const talk = known.parentTalk(r.parentId);
      if (talk === undefined) parentIds.push(r.parentId);
      else parents.set(r.parentId, talk);
    }
    if (talkIds.length === 0 && parentIds.length === 0) return { talks, parents, fresh: new Set() };
    // Every sender to a talk read now is asked about: the read replaces what was known of it.
    const agents = uniq(batch.filter((r) => reading.has(r.talkId)).map((r) => r.caller.agentId));
    const read = await readSendTargets(this.deps.db, talkIds, agents, uniq(parentIds));
    for (const id of talkIds) {
      const target = read.talks.get(id);
      if (target === undefined) known.forget(id);
      else talks.set(id, known.read(target.talk, target.members));
    }
    for (const [message, talk] of read.parentTalks) {
      known.parent(message, talk);
      parents.set(message, talk);
    }
    return { talks, parents, fresh: reading };
  }

  /** Decides each send against the talks as read: a message to write, or the error it gets. */
  #plan(batch: readonly Pending[], { talks, parents, fresh }: Snapshot) {
    const changes = new Map<TalkId, { expectedSeq: number; change: TalkChange }>();
    const firstByKey = new Map<string, Message>();
    const stale = new Set<TalkId>();
    const messages: Message[] = [];
    const results = batch.map((r): Message | Error | "alone" | "stale" => {
      if (stale.has(r.talkId)) return "stale";
      const target = talks.get(r.talkId);
      if (target === undefined || target.talk.customerId !== r.caller.customerId || !target.members.has(r.caller.agentId)) {
        return new NotFound("talk", r.talkId);
      }
      if (target.talk.status !== "active") {
        // Only a fresh read may refuse a send: the talk may have been reopened since.
        if (!fresh.has(r.talkId)) {
          stale.add(r.talkId);
          return "stale";
        }
        // A retry into a closed talk still gets its first message back: the locking path knows it.
        return r.clientMessageId === null ? new FailedPrecondition("the talk is closed; reopen it first") : "alone";
      }
      if (r.parentId !== null && parents.get(r.parentId) !== r.talkId) {
        return new InvalidArgument("parent_id", "must name a message of the same talk");
      }
      const key = r.clientMessageId === null ? null : idempotencyKey(r.talkId, r.caller.agentId, r.clientMessageId);
      const first = key === null ? undefined : firstByKey.get(key);
      if (first !== undefined) return first;
      let entry = changes.get(r.talkId);
      if (entry === undefined) {
        entry = {
          expectedSeq: target.talk.lastSeq,
          change: new TalkChange(target.talk, { ownerType: "agent", ownerId: r.caller.agentId }, this.deps.now()),
        };
        changes.set(r.talkId, entry);
      }
      const message = draftMessage(entry.change, r.caller.agentId, {
        ownerType: "agent",
        text: r.text,
        medias: r.medias,
        parentId: r.parentId,
        clientMessageId: r.clientMessageId,
      });
      entry.change.record({ type: "message_created", message }, { ownerType: "agent", ownerId: r.caller.agentId });
      messages.push(message);
      if (key !== null) firstByKey.set(key, message);
      return message;
    });
    // Forgotten only now: a later send of the batch to the same talk must be planned again too.
    for (const talkId of stale) this.#known.forget(talkId);
    const events = [...changes.values()].flatMap((c) => c.change.events);
    return { changes, messages, events, results };
  }
}
