import type { AgentId, CustomerId, ParticipantId, TalkId } from "../domain/model/ids.js";
import type { Participant, TalkType } from "../domain/model/model.js";
import { sql } from "kysely";
import type { Executor } from "./database.js";

interface ParticipantRow {
  id: string;
  customer_id: string;
  chat_id: string;
  owner_id: string;
  joined_seq: number;
  tm_joined: Date;
}

function toParticipant(row: ParticipantRow, ownerName: string): Participant {
  return {
    id: row.id as ParticipantId,
    customerId: row.customer_id as CustomerId,
    ownerType: "agent",
    ownerId: row.owner_id as AgentId,
    chatId: row.chat_id as TalkId,
    ownerName,
    joinedSeq: Number(row.joined_seq),
    tmJoined: row.tm_joined,
  };
}

/** Deletes a membership (hard delete) and returns it; null when there is none with that id. */
export async function deleteParticipant(
  db: Executor,
  customerId: CustomerId,
  talkId: TalkId,
  participantId: ParticipantId,
): Promise<Participant | null> {
  const row = await db
    .deleteFrom("participants")
    .where("chat_id", "=", talkId)
    .where("id", "=", participantId)
    .where("customer_id", "=", customerId)
    .returningAll()
    .executeTakeFirst();
  if (row === undefined) return null;
  const agent = await db
    .selectFrom("agents")
    .select("name")
    .where("id", "=", row.owner_id)
    .where("customer_id", "=", customerId)
    .executeTakeFirst();
  return toParticipant(row, agent?.name ?? "");
}

/** A talk's participants with their directory names, earliest joined first. */
export async function listParticipants(db: Executor, talkId: TalkId): Promise<Participant[]> {
  const rows = await db
    .selectFrom("participants as p")
    // Names come from the participant's own customer's directory only.
    .leftJoin("agents as a", (join) => join.onRef("a.id", "=", "p.owner_id").onRef("a.customer_id", "=", "p.customer_id"))
    .selectAll("p")
    .select("a.name as owner_name")
    .where("p.chat_id", "=", talkId)
    .orderBy("p.tm_joined")
    .orderBy("p.id")
    .execute();
  return rows.map((row) => toParticipant(row, row.owner_name ?? ""));
}

/** One of an agent's memberships, with what its feed needs to know of the talk. */
export interface Membership {
  readonly customerId: CustomerId;
  readonly talkId: TalkId;
  readonly type: TalkType;
  readonly joinedSeq: number;
  readonly lastSeq: number;
  readonly tmActivity: Date;
}

/** The live talks an agent takes part in. */
export async function listMemberships(db: Executor, customerId: CustomerId, agentId: AgentId): Promise<Membership[]> {
  const rows = await db
    .selectFrom("participants as p")
    .innerJoin("talks as t", "t.id", "p.chat_id")
    .select(["p.chat_id", "p.joined_seq", "t.type", "t.last_seq", "t.tm_activity"])
    .where("p.owner_id", "=", agentId)
    .where("p.customer_id", "=", customerId)
    .where("t.customer_id", "=", customerId)
    .where("t.tm_delete", "is", null)
    .execute();
  return rows.map((row) => ({
    customerId,
    talkId: row.chat_id as TalkId,
    type: row.type as TalkType,
    joinedSeq: Number(row.joined_seq),
    lastSeq: Number(row.last_seq),
    tmActivity: row.tm_activity,
  }));
}

/** An agent of a customer. */
export interface AgentKey {
  readonly customerId: CustomerId;
  readonly agentId: AgentId;
}

/**
 * listMemberships of many agents in one statement (the results in the keys' order); every id
 * must be a UUID, or the statement fails for all of them.
 */
export async function listMembershipsOf(db: Executor, keys: readonly AgentKey[]): Promise<Membership[][]> {
  const result: Membership[][] = keys.map(() => []);
  if (keys.length === 0) return result;
  const { rows } = await sql<{
    i: string | number;
    chat_id: string;
    joined_seq: string | number;
    type: string;
    last_seq: string | number;
    tm_activity: Date | string;
  }>`
    SELECT k.i, p.chat_id, p.joined_seq, t.type, t.last_seq, t.tm_activity
      FROM unnest(${keys.map((k) => k.customerId)}::uuid[], ${keys.map((k) => k.agentId)}::uuid[]) WITH ORDINALITY AS k(customer_id, agent_id, i)
      JOIN participants p ON p.owner_id = k.agent_id AND p.customer_id = k.customer_id
      JOIN talks t ON t.id = p.chat_id AND t.customer_id = k.customer_id AND t.tm_delete IS NULL`.execute(db);
  for (const row of rows) {
    const index = Number(row.i) - 1;
    result[index]?.push({
      customerId: keys[index]?.customerId as CustomerId,
      talkId: row.chat_id as TalkId,
      type: row.type as TalkType,
      joinedSeq: Number(row.joined_seq),
      lastSeq: Number(row.last_seq),
      tmActivity: new Date(row.tm_activity),
    });
  }
  return result;
}
