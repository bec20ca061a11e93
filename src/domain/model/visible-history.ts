/**
 * How much of a talk's history a participant may read. In a normal (1:1) talk an agent reads
 * the messages, their reactions and the events from its own newest join on, so a replaced
 * participant's successor never reads what was said before it came. The talk's opening, its
 * creator's join (seqs 1 and 2: the event and its system message), is everyone's: so the two
 * agents a normal talk is created with (joined at 1 and 3) both read it whole, and nothing but
 * the opening precedes a join at 3. In a group talk every participant reads the whole history.
 * (The store's listVisibleMessages applies the same rule in SQL.)
 */
import type { TalkEvent } from "./events.js";
import type { TalkType } from "./model.js";

/** The last seq of a talk's opening: its creator's participant_joined event and system message. */
export const openingLastSeq = 2;

/** The first seq of a talk that a membership with this joined_seq may read. */
export function historyStartSeq(type: TalkType, joinedSeq: number): number {
  return type === "normal" && joinedSeq > openingLastSeq + 1 ? joinedSeq : 1;
}

/**
 * Whether an event may be shown to a participant whose history starts at `startSeq`: it is not
 * before the start, and the message it changes (edit, delete, reaction) is not either.
 */
export function eventVisible(event: TalkEvent, startSeq: number): boolean {
  if (event.seq < startSeq) return false;
  return !("message" in event) || event.message.seq >= startSeq;
}
