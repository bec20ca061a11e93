/**
 * Group commit for sends. Concurrent SendMessage calls in a process are committed together by
 * one statement that writes all their messages, events and talk heads, applied to each talk
 * only if its head has not moved since it was read (see send-store.ts). Talks are read
 * (membership, status, head) only when this process does not know them already (see
 * known-talks.ts), so a steady stream of sends costs one round trip per batch. A batch is
 * planned (plan-batch.ts) from a snapshot of what it knew and read. A talk whose head moved
 * (another process or another kind of write got there first) is read again and its sends
 * planned again; after a few tries they take the locking path, one transaction each. A lone
 * send goes at once; sends that arrive while a batch is committing form the next batch, so
 * batching adds no waiting of its own. A talk is in at most one batch at a time, so the
 * process's own batches never collide.
 */
import { Unavailable } from "../domain/model/errors.js";
import type { AgentId, MessageId, TalkId } from "../domain/model/ids.js";
import type { Message } from "../domain/model/model.js";
import { encodeEvent, type EncodedEvent } from "../bus/event-codec.js";
import type { EventSink } from "../events/event-sink.js";
import { KnownTalks, type KnownTalk } from "./known-talks.js";
import { planBatch, type Snapshot } from "./plan-batch.js";
import type { SendRequest, Sends } from "./send-request.js";
import type { HeadMove, SendTargets } from "./send-store.js";

/**
 * What the batcher needs of the database (send-store.ts on a real one, a fake in unit tests).
 * A database that cannot be reached fails a call with Unavailable.
 */
export interface BatchStore {
  /** Live talks with which of `agentIds` take part in them, and the talks of parent messages. */
  readSendTargets(talkIds: readonly TalkId[], agentIds: readonly AgentId[], parentIds: readonly MessageId[]): Promise<SendTargets>;
  /** Writes the batch to the talks whose head is still as planned; returns those talks. */
  commitSends(moves: readonly HeadMove[], messages: readonly Message[], events: readonly EncodedEvent[]): Promise<ReadonlySet<TalkId>>;
  /** Sends one request in a locking transaction of its own (the fallback). */
  sendAlone(request: SendRequest): Promise<Message>;
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

/** One try at a batch: what each send got, and the sends whose talk moved meanwhile. */
interface Attempt {
  readonly settled: [Pending, Message | Error][];
  readonly retry: Pending[];
  /** Sends only the locking path can settle. */
  readonly alone: Pending[];
  readonly events: EncodedEvent[];
  readonly written: number;
}

/** What the batcher writes with, besides its store. */
export interface SendBatcherDeps {
  readonly store: BatchStore;
  /** Where committed events go (the bus). */
  readonly events: EventSink;
  /** The clock; tests may pin it. */
  readonly now: () => Date;
}

export class SendBatcher implements Sends {
  readonly #queue: Pending[] = [];
  /** Talks with a batch in flight. */
  readonly #busy = new Set<TalkId>();
  readonly #known: KnownTalks;
  #inFlight = 0;
  #pumpScheduled = false;

  constructor(
    private readonly deps: SendBatcherDeps,
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
        attempt = await this.#attempt(pending);
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
    await Promise.all(lonely.map((p) => this.deps.store.sendAlone(p).then(p.resolve, p.reject)));
  }

  async #attempt(batch: readonly Pending[]): Promise<Attempt> {
    const plan = planBatch(batch, await this.#learn(batch), this.deps.now);
    // Forgotten before the commit: a send of the next try is planned from a fresh read.
    for (const talkId of plan.stale) this.#known.forget(talkId);
    // Encoded once: the same bytes go into the event log and onto the bus.
    const events = plan.events.map(encodeEvent);
    const advanced = plan.moves.length === 0 ? new Set<TalkId>() : await this.deps.store.commitSends(plan.moves, plan.messages, events);
    for (const move of plan.moves) {
      if (advanced.has(move.talk.id)) this.#known.advanced(move.talk);
      else this.#known.forget(move.talk.id);
    }
    const settled: [Pending, Message | Error][] = [];
    const retry: Pending[] = [];
    const alone: Pending[] = [];
    batch.forEach((p, i) => {
      const result = plan.results[i];
      if (result === undefined) return;
      if (result === "lock") alone.push(p);
      else if (result === "read again") retry.push(p);
      else if (result instanceof Error || advanced.has(p.talkId)) settled.push([p, result]);
      else retry.push(p);
    });
    return {
      settled,
      retry,
      alone,
      events: events.filter((encoded) => advanced.has(encoded.event.chatId)),
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
    const read = await this.deps.store.readSendTargets(talkIds, agents, uniq(parentIds));
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
}
