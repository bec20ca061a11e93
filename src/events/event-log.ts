import type { TalkEvent } from "../domain/model/events.js";
import type { TalkId } from "../domain/model/ids.js";

/** Read access to the talks' event logs, the truth that live delivery is checked against. */
export interface EventLog {
  /** A talk's events with seq > afterSeq, in seq order, at most `limit`. */
  read(talkId: TalkId, afterSeq: number, limit: number): Promise<TalkEvent[]>;
  /** The latest seq of each talk. */
  heads(talkIds: readonly TalkId[]): Promise<Map<TalkId, number>>;
}
