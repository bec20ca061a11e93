/**
 * The two statements of a group commit of sends: read the talks the sends go to, then write
 * every message, event and talk head in one statement that applies to a talk only if its head
 * is still the one that was read (compare-and-set on last_seq). Every change to a talk records
 * an event and so moves last_seq; a talk whose head still matches has not changed since the
 * read, so what was decided from the read still holds. No explicit transaction, no row lock
 * held across round trips: two round trips per batch.
 */
import { sql } from "kysely";
import type { AgentId, MessageId, TalkId } from "../domain/model/ids.js";
import type { EncodedEvent } from "../bus/event-codec.js";
import type { Message, Talk } from "../domain/model/model.js";
import type { Executor } from "../store/database.js";
import { eventRow } from "../store/event-store.js";
import { messageRow } from "../store/message-store.js";
import { toTalk } from "../store/talk-store.js";

/** A talk as read for sends, with which of the senders take part in it. */
export interface SendTarget {
  readonly talk: Talk;
  readonly members: ReadonlySet<AgentId>;
}

export interface SendTargets {
  readonly talks: ReadonlyMap<TalkId, SendTarget>;
  /** The talk of each parent message named by the sends (deleted ones included). */
  readonly parentTalks: ReadonlyMap<MessageId, TalkId>;
}

/** Reads live talks with the given agents' membership, and the talks of some parent messages. */
export async function readSendTargets(
  db: Executor,
  talkIds: readonly TalkId[],
  agentIds: readonly AgentId[],
  parentIds: readonly MessageId[],
): Promise<SendTargets> {
  const talks = new Map<TalkId, { talk: Talk; members: Set<AgentId> }>();
  const rows =
    talkIds.length === 0
      ? []
      : await db
          .selectFrom("talks as t")
          .leftJoin("participants as p", (join) =>
            join.onRef("p.chat_id", "=", "t.id").onRef("p.customer_id", "=", "t.customer_id").on("p.owner_id", "in", agentIds),
          )
          .selectAll("t")
          .select("p.owner_id as member")
          .where("t.id", "in", talkIds)
          .where("t.tm_delete", "is", null)
          .execute();
  for (const row of rows) {
    const id = row.id as TalkId;
    const entry = talks.get(id) ?? { talk: toTalk(row), members: new Set<AgentId>() };
    if (row.member !== null) entry.members.add(row.member as AgentId);
    talks.set(id, entry);
  }
  const parentTalks = new Map<MessageId, TalkId>();
  if (parentIds.length > 0) {
    const parents = await db.selectFrom("messages").select(["id", "chat_id"]).where("id", "in", parentIds).execute();
    for (const row of parents) parentTalks.set(row.id as MessageId, row.chat_id as TalkId);
  }
  return { talks, parentTalks };
}

/** A talk's head move: from `expectedSeq` (as read) to the talk's new state. */
export interface HeadMove {
  readonly expectedSeq: number;
  readonly talk: Talk;
}

/**
 * Writes the sends of a batch in one statement (atomic on its own). Talks whose head is no
 * longer `expectedSeq`, or that were deleted or closed meanwhile, get nothing written; the
 * ids of the talks that did move come back. A client_message_id already used fails the whole
 * statement with a unique violation, and nothing is written.
 */
export async function commitSends(
  db: Executor,
  moves: readonly HeadMove[],
  messages: readonly Message[],
  events: readonly EncodedEvent[],
): Promise<Set<TalkId>> {
  if (moves.length === 0) return new Set();
  const m = messages.map(messageRow);
  const e = events.map(eventRow);
  const result = await sql<{ id: string }>`
    WITH heads AS (
      SELECT * FROM unnest(${moves.map((h) => h.talk.id)}::uuid[], ${moves.map((h) => h.expectedSeq)}::bigint[],
                           ${moves.map((h) => h.talk.lastSeq)}::bigint[], ${moves.map((h) => h.talk.tmActivity)}::timestamptz[])
        AS h(id, expected_seq, last_seq, tm_activity)
    ), advanced AS (
      UPDATE talks t SET last_seq = h.last_seq, tm_activity = h.tm_activity
      FROM heads h
      WHERE t.id = h.id AND t.last_seq = h.expected_seq AND t.tm_delete IS NULL AND t.status = 'active'
      RETURNING t.id
    ), new_messages AS (
      INSERT INTO messages (id, customer_id, chat_id, seq, parent_id, owner_type, owner_id, type, text, medias,
                            client_message_id, tm_create, tm_update, tm_delete)
      SELECT * FROM unnest(${m.map((r) => r.id)}::uuid[], ${m.map((r) => r.customer_id)}::uuid[], ${m.map((r) => r.chat_id)}::uuid[],
                           ${m.map((r) => r.seq)}::bigint[], ${m.map((r) => r.parent_id)}::uuid[], ${m.map((r) => r.owner_type)}::text[],
                           ${m.map((r) => r.owner_id)}::uuid[], ${m.map((r) => r.type)}::text[], ${m.map((r) => r.text)}::text[],
                           ${m.map((r) => r.medias)}::jsonb[], ${m.map((r) => r.client_message_id)}::text[],
                           ${m.map((r) => r.tm_create)}::timestamptz[], ${m.map((r) => r.tm_update)}::timestamptz[],
                           ${m.map((r) => r.tm_delete)}::timestamptz[])
        AS v(id, customer_id, chat_id, seq, parent_id, owner_type, owner_id, type, text, medias, client_message_id, tm_create, tm_update, tm_delete)
      WHERE v.chat_id IN (SELECT id FROM advanced)
    ), new_events AS (
      INSERT INTO events (chat_id, seq, customer_id, type, actor_type, actor_id, tm_create, payload)
      SELECT * FROM unnest(${e.map((r) => r.chat_id)}::uuid[], ${e.map((r) => r.seq)}::bigint[], ${e.map((r) => r.customer_id)}::uuid[],
                           ${e.map((r) => r.type)}::text[], ${e.map((r) => r.actor_type)}::text[], ${e.map((r) => r.actor_id)}::uuid[],
                           ${e.map((r) => r.tm_create)}::timestamptz[], ${e.map((r) => r.payload)}::jsonb[])
        AS v(chat_id, seq, customer_id, type, actor_type, actor_id, tm_create, payload)
      WHERE v.chat_id IN (SELECT id FROM advanced)
    )
    SELECT id FROM advanced`.execute(db);
  return new Set(result.rows.map((row) => row.id as TalkId));
}
