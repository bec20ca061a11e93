/**
 * The two statements of a change to a talk (an edit, a reaction, a delete, a participant or
 * status change): read everything the change is decided from in one statement, then write the
 * talk, its rows and its events in one statement that applies only if the talk's head
 * (last_seq) is still the one that was read (compare-and-set, as send-store.ts does for sends).
 * Every change to a talk moves its head, so an unmoved head means that nothing the decision
 * rests on has changed since the read. No explicit transaction, no lock held across round
 * trips; the locking fallback takes the talk's row lock (lockTalkOf) before it reads.
 */
import { sql, type RawBuilder, type Selectable } from "kysely";
import type { AgentId, CustomerId, MessageId, ParticipantId, TalkId } from "../domain/model/ids.js";
import { AlreadyExists } from "../domain/model/errors.js";
import type { EncodedEvent } from "../bus/event-codec.js";
import type { Message, Talk } from "../domain/model/model.js";
import type { TalkWrites } from "../domain/write/talk-change.js";
import type { Executor } from "./database.js";
import { isUniqueViolation } from "./errors.js";
import { eventRow } from "./event-store.js";
import { messageRow, reactionsFromJson, toMessage, type ReactionJson } from "./message-store.js";
import { toTalk, type TalkView } from "./talk-store.js";
import type { MessagesTable } from "./schema/messages.js";
import type { TalksTable } from "./schema/talks.js";

/** What a change reads: the talk (directly or through one of its messages) and some extras. */
export interface TargetQuery {
  readonly customerId: CustomerId;
  /** The caller, whose membership comes with the talk. */
  readonly agentId: AgentId;
  readonly of: { readonly talkId: TalkId } | { readonly messageId: MessageId };
  /** A live agent of the customer to add (its name comes back when it is in the directory). */
  readonly newMember?: AgentId;
  /** A membership of the talk to remove. */
  readonly leaving?: ParticipantId;
  /** Whether to read the agent ids of a normal talk's participants (for its pair key). */
  readonly members?: boolean;
}

/** A change's target as read, in one statement. */
export interface TalkTarget {
  readonly view: TalkView;
  /** The message asked for (of.messageId), with its reactions; null when a talk was asked for. */
  readonly message: Message | null;
  /** The agent to add, if it is in the directory; `inTalk` when it takes part already. */
  readonly newMember: { readonly id: AgentId; readonly name: string; readonly inTalk: boolean } | null;
  /** The membership to remove, with its agent's directory name ("" when none). */
  readonly leaving: {
    readonly id: ParticipantId;
    readonly ownerId: AgentId;
    readonly ownerName: string;
    readonly joinedSeq: number;
    readonly tmJoined: Date;
  } | null;
  /** The participants' agent ids of a normal talk, when asked for (empty otherwise). */
  readonly members: readonly AgentId[];
}

type Prefixed<T, P extends string> = { [K in keyof T & string as `${P}${K}`]: T[K] | null };

type TargetRow = Selectable<TalksTable> &
  Partial<Prefixed<Selectable<MessagesTable>, "m_">> & {
    participant_id: string | null;
    joined_seq: string | number | null;
    m_reactions?: ReactionJson[] | null;
    new_member_id?: string | null;
    new_member_name?: string | null;
    new_member_in_talk?: boolean | null;
    leaving_id?: string | null;
    leaving_owner_id?: string | null;
    leaving_joined_seq?: string | number | null;
    leaving_tm_joined?: Date | null;
    leaving_name?: string | null;
    members?: string[] | null;
  };

const messageColumns = [
  "id",
  "customer_id",
  "chat_id",
  "seq",
  "parent_id",
  "owner_type",
  "owner_id",
  "type",
  "text",
  "medias",
  "client_message_id",
  "tm_create",
  "tm_update",
  "tm_delete",
] as const;

const none = sql``;

/**
 * Reads a live talk of the customer with the caller's membership, and what the query asks for
 * besides; null when there is no such talk (or message). One statement.
 */
export async function readTalkTarget(db: Executor, query: TargetQuery): Promise<TalkTarget | null> {
  const { customerId, agentId, of } = query;
  const byMessage = "messageId" in of;
  const message = byMessage
    ? sql`, ${sql.join(messageColumns.map((c) => sql`m.${sql.ref(c)} AS ${sql.ref(`m_${c}`)}`))},
        (SELECT json_agg(json_build_object('emoji', r.emoji, 'owner_id', r.owner_id, 'tm_create', r.tm_create)
                         ORDER BY r.tm_create, r.owner_id, r.emoji)
           FROM reactions r WHERE r.message_id = m.id) AS m_reactions`
    : none;
  const from = byMessage ? sql`messages m JOIN talks t ON t.id = m.chat_id AND t.customer_id = m.customer_id` : sql`talks t`;
  const where = byMessage ? sql`m.id = ${of.messageId} AND m.customer_id = ${customerId}` : sql`t.id = ${of.talkId}`;
  const newMember = query.newMember === undefined ? null : query.newMember;
  const leaving = query.leaving === undefined ? null : query.leaving;
  const result = await sql<TargetRow>`
    SELECT t.*, p.id AS participant_id, p.joined_seq ${message}
      ${
        newMember === null
          ? none
          : sql`, ag.id AS new_member_id, ag.name AS new_member_name,
        EXISTS (SELECT 1 FROM participants np WHERE np.chat_id = t.id AND np.owner_id = ${newMember}) AS new_member_in_talk`
      }
      ${
        leaving === null
          ? none
          : sql`, lp.id AS leaving_id, lp.owner_id AS leaving_owner_id, lp.joined_seq AS leaving_joined_seq,
                                        lp.tm_joined AS leaving_tm_joined, la.name AS leaving_name`
      }
      ${query.members === true ? sql`, CASE WHEN t.type = 'normal' THEN (SELECT json_agg(a.owner_id) FROM participants a WHERE a.chat_id = t.id) END AS members` : none}
    FROM ${from}
    LEFT JOIN participants p ON p.chat_id = t.id AND p.owner_id = ${agentId} AND p.customer_id = ${customerId}
    ${newMember === null ? none : sql`LEFT JOIN agents ag ON ag.id = ${newMember} AND ag.customer_id = ${customerId} AND ag.tm_delete IS NULL`}
    ${
      leaving === null
        ? none
        : sql`LEFT JOIN participants lp ON lp.id = ${leaving} AND lp.chat_id = t.id AND lp.customer_id = ${customerId}
                                    LEFT JOIN agents la ON la.id = lp.owner_id AND la.customer_id = ${customerId}`
    }
    WHERE ${where} AND t.customer_id = ${customerId} AND t.tm_delete IS NULL`.execute(db);
  const row = result.rows[0];
  if (row === undefined) return null;
  return {
    view: {
      talk: toTalk(row),
      participantId: row.participant_id as ParticipantId | null,
      joinedSeq: row.joined_seq === null ? null : Number(row.joined_seq),
    },
    message: byMessage ? messageOf(row) : null,
    newMember:
      row.new_member_id === null || row.new_member_id === undefined
        ? null
        : { id: row.new_member_id as AgentId, name: row.new_member_name ?? "", inTalk: row.new_member_in_talk === true },
    leaving:
      row.leaving_id === null || row.leaving_id === undefined
        ? null
        : {
            id: row.leaving_id as ParticipantId,
            ownerId: row.leaving_owner_id as AgentId,
            ownerName: row.leaving_name ?? "",
            joinedSeq: Number(row.leaving_joined_seq),
            tmJoined: row.leaving_tm_joined as Date,
          },
    members: (row.members ?? []) as AgentId[],
  };
}

/**
 * Takes the row lock of the query's talk until the transaction ends (the locking fallback).
 * A statement of its own: a read that locks as it goes would see the talk after the wait but
 * the other tables (messages, reactions, participants) as they were before it.
 */
export async function lockTalkOf(db: Executor, query: TargetQuery): Promise<void> {
  const { of, customerId } = query;
  const talkId =
    "talkId" in of ? sql`${of.talkId}` : sql`(SELECT chat_id FROM messages WHERE id = ${of.messageId} AND customer_id = ${customerId})`;
  await sql`SELECT id FROM talks WHERE id = ${talkId} AND customer_id = ${customerId} FOR UPDATE`.execute(db);
}

function messageOf(row: TargetRow): Message {
  const columns = Object.fromEntries(messageColumns.map((c) => [c, row[`m_${c}`]])) as Selectable<MessagesTable>;
  return toMessage(columns, reactionsFromJson(row.m_reactions ?? null));
}

/** A talk change to write: the talk's new state, planned against the head `expectedSeq`. */
export interface TalkCommit {
  readonly expectedSeq: number;
  readonly talk: Talk;
  /** The new pair key (string or null); undefined leaves it as it is. */
  readonly pairKey: string | null | undefined;
  readonly writes: TalkWrites;
  readonly events: readonly EncodedEvent[];
}

/** `(VALUES (a::t1, b::t2), ...)` for rows of values and their column types. */
function values(rows: readonly (readonly unknown[])[], types: readonly string[]): RawBuilder<unknown> {
  return sql`(VALUES ${sql.join(rows.map((row) => sql`(${sql.join(row.map((value, i) => sql`${value}::${sql.raw(types[i] ?? "text")}`))})`))})`;
}

/**
 * Writes a talk change in one statement (atomic on its own): the talk's new state, and only if
 * the talk's head is still `expectedSeq`, its rows and events too. False when the head had
 * moved and nothing was written. A pair key that another live talk holds is AlreadyExists.
 */
export async function commitTalkChange(db: Executor, commit: TalkCommit): Promise<boolean> {
  const { talk, writes } = commit;
  const parts: RawBuilder<unknown>[] = [];
  const part = (name: string, statement: RawBuilder<unknown>) => parts.push(sql`, ${sql.raw(name)} AS (${statement})`);
  if (writes.newMessages.length > 0) {
    const rows = writes.newMessages.map(messageRow);
    part(
      "new_messages",
      sql`INSERT INTO messages (id, customer_id, chat_id, seq, parent_id, owner_type, owner_id, type, text, medias,
                                client_message_id, tm_create, tm_update, tm_delete)
          SELECT v.* FROM head, ${values(
            rows.map((r) => [
              r.id,
              r.customer_id,
              r.chat_id,
              r.seq,
              r.parent_id,
              r.owner_type,
              r.owner_id,
              r.type,
              r.text,
              r.medias,
              r.client_message_id,
              r.tm_create,
              r.tm_update,
              r.tm_delete,
            ]),
            [
              "uuid",
              "uuid",
              "uuid",
              "bigint",
              "uuid",
              "text",
              "uuid",
              "text",
              "text",
              "jsonb",
              "text",
              "timestamptz",
              "timestamptz",
              "timestamptz",
            ],
          )} AS v(id, customer_id, chat_id, seq, parent_id, owner_type, owner_id, type, text, medias, client_message_id,
                  tm_create, tm_update, tm_delete)`,
    );
  }
  if (writes.changedMessages.length > 0) {
    part(
      "changed_messages",
      sql`UPDATE messages m SET text = v.text, medias = v.medias, tm_update = v.tm_update, tm_delete = v.tm_delete
          FROM head, ${values(
            writes.changedMessages.map((m) => [m.id, m.text, JSON.stringify(m.medias), m.tmUpdate, m.tmDelete]),
            ["uuid", "text", "jsonb", "timestamptz", "timestamptz"],
          )} AS v(id, text, medias, tm_update, tm_delete)
          WHERE m.id = v.id AND m.chat_id = head.id`,
    );
  }
  if (writes.addedReactions.length > 0) {
    part(
      "added_reactions",
      sql`INSERT INTO reactions (message_id, owner_id, emoji, owner_type, tm_create)
          SELECT v.* FROM head, ${values(
            writes.addedReactions.map(({ messageId, reaction: r }) => [messageId, r.ownerId, r.emoji, r.ownerType, r.tmCreate]),
            ["uuid", "uuid", "text", "text", "timestamptz"],
          )} AS v(message_id, owner_id, emoji, owner_type, tm_create)`,
    );
  }
  if (writes.removedReactions.length > 0) {
    part(
      "removed_reactions",
      sql`DELETE FROM reactions r USING head, ${values(
        writes.removedReactions.map(({ messageId, reaction }) => [messageId, reaction.ownerId, reaction.emoji]),
        ["uuid", "uuid", "text"],
      )} AS v(message_id, owner_id, emoji)
          WHERE r.message_id = v.message_id AND r.owner_id = v.owner_id AND r.emoji = v.emoji`,
    );
  }
  if (writes.joined.length > 0) {
    part(
      "joined",
      sql`INSERT INTO participants (id, customer_id, chat_id, owner_type, owner_id, joined_seq, tm_joined)
          SELECT v.* FROM head, ${values(
            writes.joined.map((p) => [p.id, p.customerId, p.chatId, p.ownerType, p.ownerId, p.joinedSeq, p.tmJoined]),
            ["uuid", "uuid", "uuid", "text", "uuid", "bigint", "timestamptz"],
          )} AS v(id, customer_id, chat_id, owner_type, owner_id, joined_seq, tm_joined)`,
    );
  }
  if (writes.left.length > 0) {
    part(
      "left_talk",
      sql`DELETE FROM participants p USING head, ${values(
        writes.left.map((p) => [p.id]),
        ["uuid"],
      )} AS v(id)
          WHERE p.id = v.id AND p.chat_id = head.id`,
    );
  }
  if (commit.events.length > 0) {
    const rows = commit.events.map(eventRow);
    part(
      "new_events",
      sql`INSERT INTO events (chat_id, seq, customer_id, type, actor_type, actor_id, tm_create, payload)
          SELECT v.* FROM head, ${values(
            rows.map((r) => [r.chat_id, r.seq, r.customer_id, r.type, r.actor_type, r.actor_id, r.tm_create, r.payload]),
            ["uuid", "bigint", "uuid", "text", "text", "uuid", "timestamptz", "jsonb"],
          )} AS v(chat_id, seq, customer_id, type, actor_type, actor_id, tm_create, payload)`,
    );
  }
  const pairKey = commit.pairKey === undefined ? none : sql`, pair_key = ${commit.pairKey}`;
  try {
    const result = await sql<{ id: string }>`
      WITH head AS (
        UPDATE talks SET name = ${talk.name}, detail = ${talk.detail}, status = ${talk.status}, member_count = ${talk.memberCount},
                         last_seq = ${talk.lastSeq}, tm_update = ${talk.tmUpdate}, tm_delete = ${talk.tmDelete},
                         tm_activity = ${talk.tmActivity} ${pairKey}
        WHERE id = ${talk.id} AND customer_id = ${talk.customerId} AND last_seq = ${commit.expectedSeq}
        RETURNING id
      ) ${sql.join(parts, sql``)}
      SELECT id FROM head`.execute(db);
    return result.rows.length > 0;
  } catch (error) {
    if (typeof commit.pairKey === "string" && isUniqueViolation(error)) {
      throw new AlreadyExists("a normal talk between these two agents already exists");
    }
    throw error;
  }
}
