import { sql, type Selectable } from "kysely";
import type { AgentId, CustomerId, ParticipantId, TalkId } from "../domain/model/ids.js";
import type { Talk, TalkStatus, TalkType } from "../domain/model/model.js";
import { AlreadyExists } from "../domain/model/errors.js";
import type { Executor } from "./database.js";
import { isUniqueViolation } from "./errors.js";
import type { TalksTable } from "./schema/talks.js";

type TalkRow = Selectable<TalksTable>;

/** A talks row as the domain's Talk. */
export function toTalk(row: TalkRow): Talk {
  return {
    id: row.id as TalkId,
    customerId: row.customer_id as CustomerId,
    type: row.type as TalkType,
    name: row.name,
    detail: row.detail,
    status: row.status as TalkStatus,
    memberCount: Number(row.member_count),
    lastSeq: Number(row.last_seq),
    tmCreate: row.tm_create,
    tmUpdate: row.tm_update,
    tmDelete: row.tm_delete,
    tmActivity: row.tm_activity,
  };
}

/** A talk as one agent sees it: the talk, and the agent's membership if it takes part. */
export interface TalkView {
  readonly talk: Talk;
  readonly participantId: ParticipantId | null;
  /** The membership's joined_seq (see historyStartSeq); null when the agent takes no part. */
  readonly joinedSeq: number | null;
}

function viewQuery(db: Executor, customerId: CustomerId, talkId: TalkId, agentId: AgentId) {
  return db
    .selectFrom("talks as t")
    .leftJoin("participants as p", (join) =>
      join.onRef("p.chat_id", "=", "t.id").on("p.owner_id", "=", agentId).on("p.customer_id", "=", customerId),
    )
    .selectAll("t")
    .select(["p.id as participant_id", "p.joined_seq"])
    .where("t.id", "=", talkId)
    .where("t.customer_id", "=", customerId)
    .where("t.tm_delete", "is", null);
}

function toView(row: (TalkRow & { participant_id: string | null; joined_seq: number | null }) | undefined): TalkView | null {
  if (row === undefined) return null;
  return {
    talk: toTalk(row),
    participantId: row.participant_id as ParticipantId | null,
    joinedSeq: row.joined_seq === null ? null : Number(row.joined_seq),
  };
}

/** Reads a live (not deleted) talk of a customer, with the agent's membership. */
export async function findTalkView(db: Executor, customerId: CustomerId, talkId: TalkId, agentId: AgentId): Promise<TalkView | null> {
  return toView(await viewQuery(db, customerId, talkId, agentId).executeTakeFirst());
}

/** A talk view with the smallest seq the talk's event log still holds (null when none). */
export interface WatchedTalkView extends TalkView {
  readonly firstRetainedSeq: number | null;
}

/** findTalkView and the talk's first retained event seq in one query: what a watcher starts from. */
export async function findWatchedTalkView(
  db: Executor,
  customerId: CustomerId,
  talkId: TalkId,
  agentId: AgentId,
): Promise<WatchedTalkView | null> {
  const row = await viewQuery(db, customerId, talkId, agentId)
    .select((eb) =>
      eb
        .selectFrom("events as e")
        .select((e) => e.fn.min("e.seq").as("first"))
        .whereRef("e.chat_id", "=", "t.id")
        .as("first_seq"),
    )
    .executeTakeFirst();
  const view = toView(row);
  if (row === undefined || view === null) return null;
  return { ...view, firstRetainedSeq: row.first_seq === null || row.first_seq === undefined ? null : Number(row.first_seq) };
}

/** Which talk view to read: a talk of a customer, as one of its agents sees it. */
export interface WatchedTalkKey {
  readonly customerId: CustomerId;
  readonly talkId: TalkId;
  readonly agentId: AgentId;
}

/**
 * findWatchedTalkView of many keys in one statement (the results in the keys' order); every id
 * must be a UUID, or the statement fails for all of them.
 */
export async function findWatchedTalkViews(db: Executor, keys: readonly WatchedTalkKey[]): Promise<(WatchedTalkView | null)[]> {
  if (keys.length === 0) return [];
  const { rows } = await sql<
    TalkRow & { i: string | number; participant_id: string | null; joined_seq: number | null; first_seq: string | number | null }
  >`
    SELECT k.i, t.*, p.id AS participant_id, p.joined_seq,
           (SELECT min(e.seq) FROM events e WHERE e.chat_id = t.id) AS first_seq
      FROM unnest(${keys.map((k) => k.customerId)}::uuid[], ${keys.map((k) => k.talkId)}::uuid[], ${keys.map((k) => k.agentId)}::uuid[])
           WITH ORDINALITY AS k(customer_id, talk_id, agent_id, i)
      JOIN talks t ON t.id = k.talk_id AND t.customer_id = k.customer_id AND t.tm_delete IS NULL
      LEFT JOIN participants p ON p.chat_id = t.id AND p.owner_id = k.agent_id AND p.customer_id = k.customer_id`.execute(db);
  const views: (WatchedTalkView | null)[] = keys.map(() => null);
  for (const { i, first_seq: first, ...row } of rows) {
    const view = toView(row);
    if (view !== null) views[Number(i) - 1] = { ...view, firstRetainedSeq: first === null ? null : Number(first) };
  }
  return views;
}

/**
 * Like findTalkView, and locks the talk row until the transaction ends: every write to a talk
 * goes through this lock, which is what makes its event seq gap-free and ordered.
 */
export async function lockTalkView(db: Executor, customerId: CustomerId, talkId: TalkId, agentId: AgentId): Promise<TalkView | null> {
  return toView(await viewQuery(db, customerId, talkId, agentId).forUpdate("t").executeTakeFirst());
}

/**
 * Inserts a talk. With a pair key, a live normal talk of the same pair wins: nothing is
 * inserted and null comes back (the unique index decides, also under concurrent creates).
 */
export async function insertTalk(db: Executor, talk: Talk, pairKey: string | null): Promise<Talk | null> {
  const row = await db
    .insertInto("talks")
    .values({
      id: talk.id,
      customer_id: talk.customerId,
      type: talk.type,
      name: talk.name,
      detail: talk.detail,
      status: talk.status,
      member_count: talk.memberCount,
      last_seq: talk.lastSeq,
      pair_key: pairKey,
      tm_create: talk.tmCreate,
      tm_update: talk.tmUpdate,
      tm_delete: talk.tmDelete,
      tm_activity: talk.tmActivity,
    })
    .onConflict((oc) =>
      oc.columns(["customer_id", "pair_key"]).where("pair_key", "is not", null).where("tm_delete", "is", null).doNothing(),
    )
    .returningAll()
    .executeTakeFirst();
  return row === undefined ? null : toTalk(row);
}

/** The live normal talk of a pair of agents, if there is one. */
export async function findTalkByPair(db: Executor, customerId: CustomerId, pairKey: string): Promise<Talk | null> {
  const row = await db
    .selectFrom("talks")
    .selectAll()
    .where("customer_id", "=", customerId)
    .where("pair_key", "=", pairKey)
    .where("tm_delete", "is", null)
    .executeTakeFirst();
  return row === undefined ? null : toTalk(row);
}

/**
 * Writes a talk's changed state. pairKey undefined leaves the stored pair key as it is; a pair
 * key that another live talk holds is AlreadyExists.
 */
export async function saveTalk(db: Executor, talk: Talk, pairKey: string | null | undefined): Promise<void> {
  try {
    await updateTalkRow(db, talk, pairKey);
  } catch (error) {
    if (isUniqueViolation(error)) throw new AlreadyExists("a normal talk between these two agents already exists");
    throw error;
  }
}

async function updateTalkRow(db: Executor, talk: Talk, pairKey: string | null | undefined): Promise<void> {
  await db
    .updateTable("talks")
    .set({
      name: talk.name,
      detail: talk.detail,
      status: talk.status,
      member_count: talk.memberCount,
      last_seq: talk.lastSeq,
      tm_update: talk.tmUpdate,
      tm_delete: talk.tmDelete,
      tm_activity: talk.tmActivity,
      ...(pairKey === undefined ? {} : { pair_key: pairKey }),
    })
    .where("id", "=", talk.id)
    .where("customer_id", "=", talk.customerId)
    .execute();
}

/**
 * Where a talk stands in its agent's list: its activity to the microsecond (the database keeps
 * microseconds, a Date only milliseconds, and a position must be exact) and its id.
 */
export interface TalkPosition {
  /** tm_activity in whole milliseconds since the epoch. */
  readonly activityMs: number;
  /** The microseconds within that millisecond, 0-999. */
  readonly activityUs: number;
  readonly id: TalkId;
}

/** A talk of an agent's list, with its position there. */
export interface ListedTalk {
  readonly talk: Talk;
  readonly position: TalkPosition;
}

/** A position's time as ISO 8601 with microseconds: exact, and read alike in every session time zone. */
function positionTime(position: TalkPosition): string {
  return `${new Date(position.activityMs).toISOString().slice(0, 23)}${String(position.activityUs).padStart(3, "0")}Z`;
}

/**
 * An agent's live talks, most recent activity first, after a position: a backward walk of
 * participants_owner_activity (see its migration), each row joined to its talk.
 */
export async function listTalksOfAgent(
  db: Executor,
  customerId: CustomerId,
  agentId: AgentId,
  after: TalkPosition | null,
  limit: number,
): Promise<ListedTalk[]> {
  let query = db
    .selectFrom("participants as p")
    .innerJoin("talks as t", "t.id", "p.chat_id")
    .selectAll("t")
    .select(sql<string | number | bigint>`(extract(epoch from p.tm_activity) * 1000000)::int8`.as("activity_us"))
    .where("p.owner_id", "=", agentId)
    .where("p.customer_id", "=", customerId)
    .where("t.customer_id", "=", customerId)
    .where("t.tm_delete", "is", null);
  if (after !== null) {
    query = query.where(sql<boolean>`(p.tm_activity, p.chat_id) < (${positionTime(after)}::timestamptz, ${after.id}::uuid)`);
  }
  const rows = await query.orderBy("p.tm_activity", "desc").orderBy("p.chat_id", "desc").limit(limit).execute();
  return rows.map((row) => {
    const micros = BigInt(row.activity_us);
    const talk = toTalk(row);
    return { talk, position: { activityMs: Number(micros / 1000n), activityUs: Number(micros % 1000n), id: talk.id } };
  });
}
