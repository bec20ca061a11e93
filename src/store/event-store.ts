import { decodeEvent, encoded, type EncodedEvent } from "../bus/event-codec.js";
import type { Actor, TalkEvent } from "../domain/model/events.js";
import type { AgentId, TalkId } from "../domain/model/ids.js";
import type { Executor } from "./database.js";

/**
 * An event as its events row: the envelope in columns, the body in the payload column as the
 * codec encoded it (an EncodedEvent's text is used as is, so the bus can send the same bytes).
 */
export function eventRow(given: TalkEvent | EncodedEvent) {
  const { event, payload } = encoded(given);
  return {
    chat_id: event.chatId,
    seq: event.seq,
    customer_id: event.customerId,
    type: event.type,
    actor_type: event.actor.ownerType,
    actor_id: event.actor.ownerType === "agent" ? event.actor.ownerId : null,
    tm_create: event.tmCreate,
    payload,
  };
}

/** Appends events to their talks' logs, in the caller's transaction. */
export async function appendEvents(db: Executor, events: readonly (TalkEvent | EncodedEvent)[]): Promise<void> {
  if (events.length === 0) return;
  await db.insertInto("events").values(events.map(eventRow)).execute();
}

/** A talk's events with seq greater than afterSeq, in seq order, at most `limit`. */
export async function readEvents(db: Executor, talkId: TalkId, afterSeq: number, limit: number): Promise<TalkEvent[]> {
  const rows = await db
    .selectFrom("events")
    .selectAll()
    .where("chat_id", "=", talkId)
    .where("seq", ">", afterSeq)
    .orderBy("seq")
    .limit(limit)
    .execute();
  return rows.map((row) => {
    const actor: Actor = row.actor_type === "agent" ? { ownerType: "agent", ownerId: row.actor_id as AgentId } : { ownerType: "system" };
    // Drivers hand jsonb back parsed; going through the codec revives the Dates.
    return decodeEvent(
      JSON.stringify({
        ...(row.payload as object),
        type: row.type,
        seq: Number(row.seq),
        chatId: row.chat_id,
        customerId: row.customer_id,
        tmCreate: row.tm_create,
        actor,
      }),
    );
  });
}

/** The head (last_seq) of each of some talks; talks that do not exist are left out. */
export async function readHeads(db: Executor, talkIds: readonly TalkId[]): Promise<Map<TalkId, number>> {
  const heads = new Map<TalkId, number>();
  for (let i = 0; i < talkIds.length; i += 1000) {
    const chunk = talkIds.slice(i, i + 1000);
    const rows = await db.selectFrom("talks").select(["id", "last_seq"]).where("id", "in", chunk).execute();
    for (const row of rows) heads.set(row.id as TalkId, Number(row.last_seq));
  }
  return heads;
}

/** For each talk, the seq of its last event written before `time` (0 when none is retained). */
export async function lastSeqsBefore(db: Executor, talkIds: readonly TalkId[], time: Date): Promise<Map<TalkId, number>> {
  const seqs = new Map<TalkId, number>();
  if (talkIds.length === 0) return seqs;
  const rows = await db
    .selectFrom("events")
    .select(["chat_id", (eb) => eb.fn.max("seq").as("seq")])
    .where("chat_id", "in", talkIds)
    .where("tm_create", "<", time)
    .groupBy("chat_id")
    .execute();
  for (const row of rows) seqs.set(row.chat_id as TalkId, Number(row.seq));
  return seqs;
}

/** Deletes events written before `time`, at most `limit` of them; returns how many went. */
export async function pruneEvents(db: Executor, time: Date, limit: number): Promise<number> {
  const result = await db
    .deleteFrom("events")
    .where(({ eb, selectFrom }) =>
      eb(
        eb.refTuple("chat_id", "seq"),
        "in",
        selectFrom("events").select(["chat_id", "seq"]).where("tm_create", "<", time).limit(limit).$asTuple("chat_id", "seq"),
      ),
    )
    .executeTakeFirst();
  return Number(result.numDeletedRows);
}
