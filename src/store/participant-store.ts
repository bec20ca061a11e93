import type { AgentId, CustomerId, ParticipantId, TalkId } from "../domain/ids.js";
import type { Participant } from "../domain/model.js";
import type { Executor } from "./database.js";

interface ParticipantRow {
  id: string;
  customer_id: string;
  chat_id: string;
  owner_id: string;
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
    tmJoined: row.tm_joined,
  };
}

/** Inserts a membership; null when the agent already takes part in the talk. */
export async function insertParticipant(db: Executor, participant: Participant): Promise<Participant | null> {
  const row = await db
    .insertInto("participants")
    .values({
      id: participant.id,
      customer_id: participant.customerId,
      chat_id: participant.chatId,
      owner_type: participant.ownerType,
      owner_id: participant.ownerId,
      tm_joined: participant.tmJoined,
    })
    .onConflict((oc) => oc.columns(["chat_id", "owner_id"]).doNothing())
    .returningAll()
    .executeTakeFirst();
  return row === undefined ? null : toParticipant(row, participant.ownerName);
}

/** Deletes a membership (hard delete) and returns it; null when there is none with that id. */
export async function deleteParticipant(db: Executor, talkId: TalkId, participantId: ParticipantId): Promise<Participant | null> {
  const row = await db
    .deleteFrom("participants")
    .where("chat_id", "=", talkId)
    .where("id", "=", participantId)
    .returningAll()
    .executeTakeFirst();
  if (row === undefined) return null;
  const agent = await db.selectFrom("agents").select("name").where("id", "=", row.owner_id).executeTakeFirst();
  return toParticipant(row, agent?.name ?? "");
}

/** A talk's participants with their directory names, earliest joined first. */
export async function listParticipants(db: Executor, talkId: TalkId): Promise<Participant[]> {
  const rows = await db
    .selectFrom("participants as p")
    .leftJoin("agents as a", "a.id", "p.owner_id")
    .selectAll("p")
    .select("a.name as owner_name")
    .where("p.chat_id", "=", talkId)
    .orderBy("p.tm_joined")
    .orderBy("p.id")
    .execute();
  return rows.map((row) => toParticipant(row, row.owner_name ?? ""));
}

/** The agent ids of a talk's participants. */
export async function listParticipantOwners(db: Executor, talkId: TalkId): Promise<AgentId[]> {
  const rows = await db.selectFrom("participants").select("owner_id").where("chat_id", "=", talkId).execute();
  return rows.map((row) => row.owner_id as AgentId);
}
