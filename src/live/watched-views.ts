/**
 * What a WatchTalk stream reads when it opens (the talk, the caller's membership, the first
 * retained seq), read for all the streams opening in one turn of the event loop with one query.
 */
import { isUuid } from "../domain/model/ids.js";
import type { Executor } from "../store/database.js";
import { guarded } from "../store/errors.js";
import { findWatchedTalkView, findWatchedTalkViews, type WatchedTalkKey, type WatchedTalkView } from "../store/talk-store.js";
import { TurnBatch } from "./turn-batch.js";

export type WatchedViews = (key: WatchedTalkKey) => Promise<WatchedTalkView | null>;

export function watchedViews(db: Executor): WatchedViews {
  const batch = new TurnBatch<WatchedTalkKey, WatchedTalkView | null>((keys) => guarded(() => findWatchedTalkViews(db, keys)));
  return (key) =>
    // An id that is not a UUID would fail the whole batch's statement: it is read alone.
    isUuid(key.customerId) && isUuid(key.talkId) && isUuid(key.agentId)
      ? batch.get(key)
      : guarded(() => findWatchedTalkView(db, key.customerId, key.talkId, key.agentId));
}
