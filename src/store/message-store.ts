import { sql, type Insertable, type Selectable } from "kysely";
import type { AgentId, CustomerId, MessageId, TalkId } from "../domain/model/ids.js";
import type { Message, MessageType, OwnerType, Reaction } from "../domain/model/model.js";
import type { Executor } from "./database.js";
import type { MessagesTable } from "./schema/messages.js";

type MessageRow = Selectable<MessagesTable>;

/** A messages row and its reactions as the domain's Message. */
export function toMessage(row: MessageRow, reactions: readonly Reaction[]): Message {
  return {
    id: row.id as MessageId,
    customerId: row.customer_id as CustomerId,
    ownerType: row.owner_type as OwnerType,
    ownerId: row.owner_id as AgentId | null,
    chatId: row.chat_id as TalkId,
    parentId: row.parent_id as MessageId | null,
    type: row.type as MessageType,
    text: row.text,
    medias: row.medias,
    reactions,
    clientMessageId: row.client_message_id,
    seq: Number(row.seq),
    tmCreate: row.tm_create,
    tmUpdate: row.tm_update,
    tmDelete: row.tm_delete,
  };
}

/** A reaction as a statement's json_agg(json_build_object(...)) hands it back. */
export interface ReactionJson {
  readonly emoji: string;
  readonly owner_id: string;
  readonly tm_create: string;
}

/** Reactions aggregated to JSON in SQL (null when there are none) as the domain's Reactions. */
export function reactionsFromJson(rows: readonly ReactionJson[] | null): Reaction[] {
  return (rows ?? []).map((r) => ({ emoji: r.emoji, ownerType: "agent", ownerId: r.owner_id as AgentId, tmCreate: new Date(r.tm_create) }));
}

/** A message as its messages row. */
export function messageRow(message: Message): Insertable<MessagesTable> & { medias: string; seq: number; tm_create: Date } {
  return {
    id: message.id,
    customer_id: message.customerId,
    chat_id: message.chatId,
    seq: message.seq,
    parent_id: message.parentId,
    owner_type: message.ownerType,
    owner_id: message.ownerId,
    type: message.type,
    text: message.text,
    medias: JSON.stringify(message.medias),
    client_message_id: message.clientMessageId,
    tm_create: message.tmCreate,
    tm_update: message.tmUpdate,
    tm_delete: message.tmDelete,
  };
}

/** The reactions of some messages, oldest first, grouped by message id. */
async function reactionsOf(db: Executor, ids: readonly string[]): Promise<Map<string, Reaction[]>> {
  const byMessage = new Map<string, Reaction[]>();
  if (ids.length === 0) return byMessage;
  const rows = await db
    .selectFrom("reactions")
    .selectAll()
    .where("message_id", "in", ids)
    .orderBy("tm_create")
    .orderBy("owner_id")
    .orderBy("emoji")
    .execute();
  for (const row of rows) {
    const list = byMessage.get(row.message_id) ?? [];
    list.push({ emoji: row.emoji, ownerType: "agent", ownerId: row.owner_id as AgentId, tmCreate: row.tm_create });
    byMessage.set(row.message_id, list);
  }
  return byMessage;
}

async function withReactions(db: Executor, rows: readonly MessageRow[]): Promise<Message[]> {
  const reactions = await reactionsOf(
    db,
    rows.map((row) => row.id),
  );
  return rows.map((row) => toMessage(row, reactions.get(row.id) ?? []));
}

/** Inserts a message; null when its client_message_id was already used by the sender in the talk. */
export async function insertMessage(db: Executor, message: Message): Promise<Message | null> {
  const row = await db
    .insertInto("messages")
    .values(messageRow(message))
    .onConflict((oc) => oc.columns(["chat_id", "owner_id", "client_message_id"]).where("client_message_id", "is not", null).doNothing())
    .returningAll()
    .executeTakeFirst();
  return row === undefined ? null : toMessage(row, []);
}

/** One message of a customer by id, with its reactions. */
export async function findMessage(db: Executor, customerId: CustomerId, id: MessageId): Promise<Message | null> {
  const row = await db.selectFrom("messages").selectAll().where("id", "=", id).where("customer_id", "=", customerId).executeTakeFirst();
  if (row === undefined) return null;
  const [message] = await withReactions(db, [row]);
  return message ?? null;
}

/** The message a sender already sent to a talk under a client_message_id. */
export async function findMessageByClientId(
  db: Executor,
  talkId: TalkId,
  ownerId: AgentId,
  clientMessageId: string,
): Promise<Message | null> {
  const row = await db
    .selectFrom("messages")
    .selectAll()
    .where("chat_id", "=", talkId)
    .where("owner_id", "=", ownerId)
    .where("client_message_id", "=", clientMessageId)
    .executeTakeFirst();
  if (row === undefined) return null;
  const [message] = await withReactions(db, [row]);
  return message ?? null;
}

/** Whether a message is in a talk (deleted or not). */
export async function messageInTalk(db: Executor, talkId: TalkId, id: MessageId): Promise<boolean> {
  const row = await db.selectFrom("messages").select("id").where("id", "=", id).where("chat_id", "=", talkId).executeTakeFirst();
  return row !== undefined;
}

/** The position and size of a page of messages. */
export interface MessagePage {
  /** Only the direct replies of this message (of the same talk). */
  readonly parentId: MessageId | null;
  /** Only messages with a seq below this. */
  readonly beforeSeq: number | null;
  readonly limit: number;
}

/** A message of a page as the page statement builds it in JSON (times in ms since the epoch). */
interface PageMessageJson {
  readonly id: string;
  readonly owner_type: string;
  readonly owner_id: string | null;
  readonly parent_id: string | null;
  readonly type: string;
  readonly text: string;
  readonly medias: Message["medias"];
  readonly client_message_id: string | null;
  readonly seq: number;
  readonly tm_create: number;
  readonly tm_update: number;
  readonly tm_delete: number | null;
  readonly reactions: readonly { readonly emoji: string; readonly owner_id: string; readonly tm_create: number }[] | null;
}

/** A timestamp as whole milliseconds since the epoch, as a Date holds it (json numbers parse natively). */
const epochMs = (column: string) => sql`floor(extract(epoch from ${sql.ref(column)}) * 1000)`;

/**
 * A page of a talk's messages (or one thread's direct replies), newest first, with their
 * reactions, if the agent takes part in the live talk; null otherwise. In a normal talk only
 * the messages from the agent's joined_seq on, past the talk's opening (domain/model/visible-history.ts:
 * historyStartSeq; the 3 below is its openingLastSeq + 1).
 * One statement: the access check (once, materialized), the page and the reactions. The page
 * comes back as one JSON value: parsing it is a fraction of the driver's per-column parsing
 * of 50 rows (their timestamps above all), which was most of this read's CPU in the server.
 */
export async function listVisibleMessages(
  db: Executor,
  customerId: CustomerId,
  agentId: AgentId,
  talkId: TalkId,
  page: MessagePage,
): Promise<Message[] | null> {
  const thread = page.parentId === null ? sql`` : sql`AND m.parent_id = ${page.parentId}`;
  const before = page.beforeSeq === null ? sql`` : sql`AND m.seq < ${page.beforeSeq}`;
  const result = await sql<{ page: PageMessageJson[] }>`
    WITH access AS MATERIALIZED (
      SELECT CASE WHEN t.type = 'normal' AND p.joined_seq > 3 THEN p.joined_seq ELSE 1 END AS start_seq
      FROM talks t JOIN participants p ON p.chat_id = t.id AND p.owner_id = ${agentId} AND p.customer_id = ${customerId}
      WHERE t.id = ${talkId} AND t.customer_id = ${customerId} AND t.tm_delete IS NULL)
    SELECT (
      SELECT coalesce(json_agg(json_build_object(
          'id', m.id, 'owner_type', m.owner_type, 'owner_id', m.owner_id, 'parent_id', m.parent_id, 'type', m.type,
          'text', m.text, 'medias', m.medias, 'client_message_id', m.client_message_id, 'seq', m.seq,
          'tm_create', ${epochMs("m.tm_create")}, 'tm_update', ${epochMs("m.tm_update")},
          'tm_delete', ${epochMs("m.tm_delete")},
          'reactions', (SELECT json_agg(json_build_object('emoji', r.emoji, 'owner_id', r.owner_id, 'tm_create', ${epochMs("r.tm_create")})
                                        ORDER BY r.tm_create, r.owner_id, r.emoji)
                        FROM reactions r WHERE r.message_id = m.id))
        ORDER BY m.seq DESC), '[]')
      FROM (
        SELECT * FROM messages m
        WHERE m.chat_id = ${talkId} AND m.customer_id = ${customerId} AND m.seq >= access.start_seq ${thread} ${before}
        ORDER BY m.seq DESC LIMIT ${page.limit}
      ) m) AS page
    FROM access`.execute(db);
  const row = result.rows[0];
  if (row === undefined) return null;
  return row.page.map((m) => ({
    id: m.id as MessageId,
    customerId,
    ownerType: m.owner_type as OwnerType,
    ownerId: m.owner_id as AgentId | null,
    chatId: talkId,
    parentId: m.parent_id as MessageId | null,
    type: m.type as MessageType,
    text: m.text,
    medias: m.medias,
    reactions: (m.reactions ?? []).map((r) => ({
      emoji: r.emoji,
      ownerType: "agent",
      ownerId: r.owner_id as AgentId,
      tmCreate: new Date(r.tm_create),
    })),
    clientMessageId: m.client_message_id,
    seq: Number(m.seq),
    tmCreate: new Date(m.tm_create),
    tmUpdate: new Date(m.tm_update),
    tmDelete: m.tm_delete === null ? null : new Date(m.tm_delete),
  }));
}

/** Writes a message's text, medias and times (edits and tombstones). */
export async function saveMessage(db: Executor, message: Message): Promise<void> {
  await db
    .updateTable("messages")
    .set({
      text: message.text,
      medias: JSON.stringify(message.medias),
      tm_update: message.tmUpdate,
      tm_delete: message.tmDelete,
    })
    .where("id", "=", message.id)
    .where("customer_id", "=", message.customerId)
    .execute();
}
