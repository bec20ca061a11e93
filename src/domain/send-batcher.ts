/**
 * Group commit for sends. Concurrent SendMessage calls in a process are committed together:
 * one transaction locks their talks (in id order), settles each send under those locks
 * (membership, status, parent, idempotency key, seq), and writes all messages, events and
 * talk heads with one statement each. A lone send goes at once; sends that arrive while a
 * batch is committing form the next batch, so batching adds no waiting of its own.
 */
import { guarded } from "../store/errors.js";
import { appendEvents } from "../store/event-store.js";
import type { Executor } from "../store/database.js";
import { findMessagesByClientIds, insertMessages, talksOfMessages } from "../store/message-store.js";
import { advanceTalks, lockTalksForSends } from "../store/talk-store.js";
import type { DomainDeps } from "./deps.js";
import { FailedPrecondition, InvalidArgument, NotFound, Unavailable } from "./errors.js";
import type { TalkEvent } from "./events.js";
import type { AgentId, MessageId, TalkId } from "./ids.js";
import type { Identity } from "./identity.js";
import type { Media, Message } from "./model.js";
import { draftMessage } from "./draft-message.js";
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
  /** Sends in one transaction at most. */
  readonly maxBatch: number;
  /** Batches committing at once (each holds a database connection). */
  readonly maxInFlight: number;
  /** Told the size of every committed batch (metrics). */
  readonly onCommit?: (size: number) => void;
}

function uniq<T>(values: Iterable<T>): T[] {
  return [...new Set(values)];
}

function idempotencyKey(talkId: TalkId, sender: AgentId, clientMessageId: string): string {
  return `${talkId}\n${sender}\n${clientMessageId}`;
}

export class SendBatcher {
  readonly #queue: Pending[] = [];
  #inFlight = 0;

  constructor(
    private readonly deps: DomainDeps,
    /** Sends one request on its own: used when a batch fails for a reason other than the database being away. */
    private readonly sendAlone: (request: SendRequest) => Promise<Message>,
    private readonly options: SendBatcherOptions,
  ) {}

  submit(request: SendRequest): Promise<Message> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ ...request, resolve, reject });
      this.#pump();
    });
  }

  #pump(): void {
    while (this.#inFlight < this.options.maxInFlight && this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.options.maxBatch);
      this.#inFlight++;
      void this.#commit(batch).finally(() => {
        this.#inFlight--;
        this.#pump();
      });
    }
  }

  async #commit(batch: readonly Pending[]): Promise<void> {
    let outcome: { results: (Message | Error)[]; events: TalkEvent[] };
    try {
      outcome = await guarded(() => this.deps.db.transaction().execute((trx) => this.#write(trx, batch)));
    } catch (error) {
      if (error instanceof Unavailable || batch.length === 1) {
        for (const pending of batch) pending.reject(error);
      } else {
        // One send's trouble must not fail the others: each goes again on its own.
        await Promise.all(batch.map((pending) => this.sendAlone(pending).then(pending.resolve, pending.reject)));
      }
      return;
    }
    this.options.onCommit?.(batch.length);
    if (outcome.events.length > 0) this.deps.events.publish(outcome.events);
    batch.forEach((pending, i) => {
      const result = outcome.results[i];
      if (result instanceof Error) pending.reject(result);
      else if (result !== undefined) pending.resolve(result);
    });
  }

  async #write(trx: Executor, batch: readonly Pending[]): Promise<{ results: (Message | Error)[]; events: TalkEvent[] }> {
    const locked = await lockTalksForSends(
      trx,
      uniq(batch.map((r) => r.talkId)),
      uniq(batch.map((r) => r.caller.agentId)),
    );
    const keyed = batch.filter((r) => r.clientMessageId !== null);
    const earlier = await findMessagesByClientIds(
      trx,
      uniq(keyed.map((r) => r.talkId)),
      uniq(keyed.map((r) => r.clientMessageId ?? "")),
    );
    const firstByKey = new Map<string, Message>();
    for (const message of earlier) {
      if (message.ownerId !== null && message.clientMessageId !== null) {
        firstByKey.set(idempotencyKey(message.chatId, message.ownerId, message.clientMessageId), message);
      }
    }
    const parentTalks = await talksOfMessages(trx, uniq(batch.flatMap((r) => (r.parentId === null ? [] : [r.parentId]))));

    const changes = new Map<TalkId, TalkChange>();
    const messages: Message[] = [];
    const results = batch.map((r): Message | Error => {
      const lockedTalk = locked.get(r.talkId);
      if (lockedTalk === undefined || lockedTalk.talk.customerId !== r.caller.customerId || !lockedTalk.members.has(r.caller.agentId)) {
        return new NotFound("talk", r.talkId);
      }
      const key = r.clientMessageId === null ? null : idempotencyKey(r.talkId, r.caller.agentId, r.clientMessageId);
      const first = key === null ? undefined : firstByKey.get(key);
      if (first !== undefined) return first;
      let change = changes.get(r.talkId);
      if (change === undefined) {
        change = new TalkChange(lockedTalk.talk, { ownerType: "agent", ownerId: r.caller.agentId }, this.deps.now());
        changes.set(r.talkId, change);
      }
      if (change.talk.status !== "active") return new FailedPrecondition("the talk is closed; reopen it first");
      if (r.parentId !== null && parentTalks.get(r.parentId) !== r.talkId) {
        return new InvalidArgument("parent_id", "must name a message of the same talk");
      }
      const message = draftMessage(change, r.caller.agentId, {
        ownerType: "agent",
        text: r.text,
        medias: r.medias,
        parentId: r.parentId,
        clientMessageId: r.clientMessageId,
      });
      change.record({ type: "message_created", message }, { ownerType: "agent", ownerId: r.caller.agentId });
      messages.push(message);
      if (key !== null) firstByKey.set(key, message);
      return message;
    });
    const events = [...changes.values()].flatMap((change) => change.events);
    await insertMessages(trx, messages);
    await appendEvents(trx, events);
    await advanceTalks(
      trx,
      [...changes.values()].filter((change) => change.events.length > 0).map((change) => change.talk),
    );
    return { results, events };
  }
}
