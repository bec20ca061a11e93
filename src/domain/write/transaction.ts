/**
 * How the domain writes: one transaction per operation, events appended inside it and
 * published only after it commits.
 */
import type { Executor } from "../../store/database.js";
import { appendEvents } from "../../store/event-store.js";
import { lockTalkView, saveTalk, type TalkView } from "../../store/talk-store.js";
import type { DomainDeps } from "../deps.js";
import { NotFound } from "../model/errors.js";
import { encodeEvent, type EncodedEvent } from "../../bus/event-codec.js";
import type { Actor } from "../model/events.js";
import type { TalkId } from "../model/ids.js";
import type { Identity } from "../model/identity.js";
import { TalkChange } from "./talk-change.js";

/** The event actor for an agent's request. */
export function actorOf(caller: Identity): Actor {
  return { ownerType: "agent", ownerId: caller.agentId };
}

/** Runs `work` in a transaction, then publishes the events it returned (as it encoded them). */
export async function transact<T>(
  deps: DomainDeps,
  work: (trx: Executor) => Promise<{ result: T; events: readonly EncodedEvent[] }>,
): Promise<T> {
  const { result, events } = await deps.db.transaction().execute(work);
  if (events.length > 0) deps.events.publish(events);
  return result;
}

/**
 * Changes one talk the caller takes part in: locks the talk row (ordering every write to the
 * talk), runs `work`, saves the talk and appends the recorded events, commits, publishes. The
 * send batcher's fallback; every other change goes through change-at-head.ts.
 * A talk that does not exist, is deleted, or lacks the caller is NotFound alike.
 */
export async function changeTalk<T>(
  deps: DomainDeps,
  caller: Identity,
  talkId: TalkId,
  work: (trx: Executor, change: TalkChange, view: TalkView) => Promise<T>,
): Promise<T> {
  return transact(deps, async (trx) => {
    const view = await lockTalkView(trx, caller.customerId, talkId, caller.agentId);
    if (view === null || view.participantId === null) throw new NotFound("talk", talkId);
    const change = new TalkChange(view.talk, actorOf(caller), deps.now());
    const result = await work(trx, change, view);
    if (change.talk !== view.talk) await saveTalk(trx, change.talk, change.pairKey);
    const events = change.events.map(encodeEvent);
    await appendEvents(trx, events);
    return { result, events };
  });
}
