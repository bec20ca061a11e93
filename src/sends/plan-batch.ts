/**
 * The plan of one batch of sends: each send judged (judge-send.ts) against an immutable
 * snapshot of the talks and parent messages the batch knew or read, and the messages, events
 * and head moves of those to write. Pure: no store, no cache, so nothing changes under it.
 */
import type { DomainError } from "../domain/model/errors.js";
import type { TalkEvent } from "../domain/model/events.js";
import type { AgentId, MessageId, TalkId } from "../domain/model/ids.js";
import type { Message } from "../domain/model/model.js";
import { draftMessage } from "../domain/write/draft-message.js";
import { TalkChange } from "../domain/write/talk-change.js";
import { judgeSend } from "./judge-send.js";
import type { KnownTalk } from "./known-talks.js";
import type { SendRequest } from "./send-request.js";
import type { HeadMove } from "./send-store.js";

/** What a batch is planned from, captured once (SendBatcher#learn). */
export interface Snapshot {
  readonly talks: ReadonlyMap<TalkId, KnownTalk>;
  readonly parents: ReadonlyMap<MessageId, TalkId>;
  /** The talks read for this batch (the rest were remembered). */
  readonly fresh: ReadonlySet<TalkId>;
}

/**
 * What one send gets from the plan: the message to write (or the first message of a retry),
 * its error, "lock" for the locking path, or "read again" when its talk must be read afresh.
 */
export type Planned = Message | DomainError | "lock" | "read again";

export interface BatchPlan {
  /** Per send, in batch order. */
  readonly results: readonly Planned[];
  /** One per talk written: from the head planned against to the talk after its messages. */
  readonly moves: readonly HeadMove[];
  readonly messages: readonly Message[];
  readonly events: readonly TalkEvent[];
  /** Talks remembered, not read, that looked closed: to forget, and read before a new plan. */
  readonly stale: ReadonlySet<TalkId>;
}

function idempotencyKey(talkId: TalkId, sender: AgentId, clientMessageId: string): string {
  return `${talkId}\n${sender}\n${clientMessageId}`;
}

/** Plans a batch; `now` is asked once per talk written. */
export function planBatch(batch: readonly SendRequest[], { talks, parents, fresh }: Snapshot, now: () => Date): BatchPlan {
  const changes = new Map<TalkId, { expectedSeq: number; change: TalkChange }>();
  const firstByKey = new Map<string, Message>();
  const stale = new Set<TalkId>();
  const messages: Message[] = [];
  const results = batch.map((r): Planned => {
    // A later send to a talk found stale is planned again with it.
    if (stale.has(r.talkId)) return "read again";
    const key = r.clientMessageId === null ? null : idempotencyKey(r.talkId, r.caller.agentId, r.clientMessageId);
    const verdict = judgeSend(talks.get(r.talkId), r, fresh.has(r.talkId), {
      parentTalk: r.parentId === null ? undefined : parents.get(r.parentId),
      // Earlier sends of this batch are known; the store's are not (its unique index decides).
      first: key === null ? null : firstByKey.get(key),
    });
    switch (verdict.decision) {
      case "refuse":
        return verdict.error;
      case "first":
        return verdict.message;
      case "lock":
        return "lock";
      case "read again":
        stale.add(r.talkId);
        return "read again";
    }
    const { talk } = verdict;
    const actor = { ownerType: "agent", ownerId: r.caller.agentId } as const;
    let entry = changes.get(r.talkId);
    if (entry === undefined) {
      entry = { expectedSeq: talk.lastSeq, change: new TalkChange(talk, actor, now()) };
      changes.set(r.talkId, entry);
    }
    const message = draftMessage(entry.change, r.caller.agentId, {
      ownerType: "agent",
      text: r.text,
      medias: r.medias,
      parentId: r.parentId,
      clientMessageId: r.clientMessageId,
    });
    entry.change.record({ type: "message_created", message }, actor);
    messages.push(message);
    if (key !== null) firstByKey.set(key, message);
    return message;
  });
  const moves = [...changes.values()].map(({ expectedSeq, change }) => ({ expectedSeq, talk: change.talk }));
  const events = [...changes.values()].flatMap(({ change }) => change.events);
  return { results, moves, messages, events, stale };
}
