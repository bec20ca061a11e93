/**
 * How the domain changes a talk (edits, reactions, deletes, participants, status): one read of
 * everything the change is decided from, a decision with no SQL, and one write that applies
 * only if the talk's head (last_seq) is still the one that was read (store/talk-change-store.ts).
 * Every change moves the head, so an unmoved head makes the decision exact: the reaction count,
 * the member count, the author, the deleted and closed states are as they were read. A lost
 * race (the head moved) reads and decides again; after a few, the change takes the talk's row
 * lock, so a change to a busy talk does not starve. Events are published after the write.
 */
import {
  commitTalkChange,
  lockTalkOf,
  readTalkTarget,
  type TalkCommit,
  type TalkTarget,
  type TargetQuery,
} from "../../store/talk-change-store.js";
import type { DomainDeps } from "../deps.js";
import type { DomainError } from "../model/errors.js";
import { encodeEvent, type EncodedEvent } from "../../bus/event-codec.js";
import type { Identity } from "../model/identity.js";
import { TalkChange } from "./talk-change.js";
import { actorOf, transact } from "./transaction.js";

/** Tries at the head before a change takes the talk's row lock. */
const optimisticTries = 3;

/** What a change reads besides the talk and the caller's membership. */
export type ChangeTarget = Omit<TargetQuery, "customerId" | "agentId">;

/** Decides a change from what was read: records rows and events on `change`, or throws. */
export type Decide<T> = (change: TalkChange, target: TalkTarget) => T;

/** The write of a decided change, planned against the head `expectedSeq`. */
export function commitOf(change: TalkChange, expectedSeq: number, events: readonly EncodedEvent[]): TalkCommit {
  return { expectedSeq, talk: change.talk, pairKey: change.pairKey, writes: change.writes, events };
}

/**
 * Changes a talk the caller takes part in (found directly or through one of its messages). A
 * talk that does not exist, is deleted, or lacks the caller is `notFound()` alike. A decision
 * that records no event writes nothing: one round trip.
 */
export async function changeAtHead<T>(
  deps: DomainDeps,
  caller: Identity,
  what: ChangeTarget,
  notFound: () => DomainError,
  decide: Decide<T>,
): Promise<T> {
  const query: TargetQuery = { ...what, customerId: caller.customerId, agentId: caller.agentId };
  const decideOn = (target: TalkTarget | null) => {
    if (target === null || target.view.participantId === null) throw notFound();
    const change = new TalkChange(target.view.talk, actorOf(caller), deps.now());
    return { change, result: decide(change, target), expectedSeq: target.view.talk.lastSeq };
  };
  for (let tries = 0; tries < optimisticTries; tries++) {
    const { change, result, expectedSeq } = decideOn(await readTalkTarget(deps.db, query));
    if (change.events.length === 0) return result;
    // Encoded once: the statement writes and the bus carries the same encoding.
    const events = change.events.map(encodeEvent);
    if (await commitTalkChange(deps.db, commitOf(change, expectedSeq, events))) {
      deps.events.publish(events);
      return result;
    }
  }
  return transact(deps, async (trx) => {
    await lockTalkOf(trx, query);
    const { change, result, expectedSeq } = decideOn(await readTalkTarget(trx, query));
    const events = change.events.map(encodeEvent);
    if (events.length > 0 && !(await commitTalkChange(trx, commitOf(change, expectedSeq, events)))) {
      throw new Error("a talk's head moved under its row lock");
    }
    return { result, events };
  });
}
