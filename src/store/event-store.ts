import type { Actor, EventPayload, EventType, TalkEvent } from "../domain/events.js";
import type { AgentId, CustomerId, TalkId } from "../domain/ids.js";
import type { Executor } from "./database.js";

/** JSON keeps no Dates: the resources' tm_* fields come back as ISO strings and are revived here. */
function reviveDates(key: string, value: unknown): unknown {
  return key.startsWith("tm") && typeof value === "string" ? new Date(value) : value;
}

function payloadOf(event: TalkEvent): Omit<EventPayload, "type"> {
  const { seq: _seq, chatId: _chatId, customerId: _customerId, tmCreate: _tmCreate, actor: _actor, type: _type, ...payload } = event;
  return payload;
}

/** Appends events to their talks' logs, in the caller's transaction. */
export async function appendEvents(db: Executor, events: readonly TalkEvent[]): Promise<void> {
  if (events.length === 0) return;
  await db
    .insertInto("events")
    .values(
      events.map((event) => ({
        chat_id: event.chatId,
        seq: event.seq,
        customer_id: event.customerId,
        type: event.type,
        actor_type: event.actor.ownerType,
        actor_id: event.actor.ownerType === "agent" ? event.actor.ownerId : null,
        tm_create: event.tmCreate,
        payload: JSON.stringify(payloadOf(event)),
      })),
    )
    .execute();
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
    const actor: Actor =
      row.actor_type === "agent" ? { ownerType: "agent", ownerId: row.actor_id as AgentId } : { ownerType: "system" };
    // pg hands jsonb back parsed and PGlite too; re-reading through JSON revives the Dates.
    const payload = JSON.parse(JSON.stringify(row.payload), reviveDates) as Omit<EventPayload, "type">;
    return {
      ...payload,
      type: row.type as EventType,
      seq: Number(row.seq),
      chatId: row.chat_id as TalkId,
      customerId: row.customer_id as CustomerId,
      tmCreate: row.tm_create,
      actor,
    } as TalkEvent;
  });
}
