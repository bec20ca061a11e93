/**
 * The talks an agent's view of ended since a time: those it left (its participant_left, found in
 * the log through the events_departures index, since the membership row is gone) and those
 * deleted while it took part (the membership row stays with the soft-deleted talk).
 */
import { sql } from "kysely";
import type { AgentId, CustomerId, TalkId } from "../domain/model/ids.js";
import type { TalkType } from "../domain/model/model.js";
import type { Executor } from "./database.js";

/** Where an agent's view of a talk ended: the seq of its participant_left or of the talk_deleted. */
export interface Departure {
  readonly talkId: TalkId;
  readonly type: TalkType;
  /** The joined_seq of the membership that ended. */
  readonly joinedSeq: number;
  readonly endSeq: number;
  readonly tmEnd: Date;
}

/** Every departure of an agent at or after `since`, in (talk, seq) order; one statement. */
export async function listDepartures(db: Executor, customerId: CustomerId, agentId: AgentId, since: Date): Promise<Departure[]> {
  const { rows } = await sql<{
    chat_id: string;
    type: string;
    joined_seq: string | number;
    end_seq: string | number;
    tm_end: Date | string;
  }>`
    SELECT e.chat_id, t.type, (e.payload->'participant'->>'joinedSeq')::bigint AS joined_seq, e.seq AS end_seq, e.tm_create AS tm_end
      FROM events e JOIN talks t ON t.id = e.chat_id
     WHERE e.type = 'participant_left' AND e.customer_id = ${customerId}
       AND (e.payload->'participant'->>'ownerId') = ${agentId} AND e.tm_create >= ${since}
    UNION ALL
    SELECT p.chat_id, t.type, p.joined_seq, t.last_seq AS end_seq, t.tm_delete AS tm_end
      FROM participants p JOIN talks t ON t.id = p.chat_id
     WHERE p.owner_id = ${agentId} AND p.customer_id = ${customerId} AND t.customer_id = ${customerId}
       AND t.tm_delete >= ${since}
     ORDER BY chat_id, end_seq`.execute(db);
  return rows.map((row) => ({
    talkId: row.chat_id as TalkId,
    type: row.type as TalkType,
    joinedSeq: Number(row.joined_seq),
    endSeq: Number(row.end_seq),
    tmEnd: new Date(row.tm_end),
  }));
}

/** Whose departures to read, and since when. */
export interface DepartureKey {
  readonly customerId: CustomerId;
  readonly agentId: AgentId;
  readonly since: Date;
}

/**
 * listDepartures of many agents in one statement (the results in the keys' order); every id
 * must be a UUID, or the statement fails for all of them.
 */
export async function listDeparturesOf(db: Executor, keys: readonly DepartureKey[]): Promise<Departure[][]> {
  const result: Departure[][] = keys.map(() => []);
  if (keys.length === 0) return result;
  const customers = keys.map((k) => k.customerId);
  const agents = keys.map((k) => k.agentId);
  const since = keys.map((k) => k.since.toISOString());
  const { rows } = await sql<{
    i: string | number;
    chat_id: string;
    type: string;
    joined_seq: string | number;
    end_seq: string | number;
    tm_end: Date | string;
  }>`
    WITH k AS (SELECT * FROM unnest(${customers}::uuid[], ${agents}::uuid[], ${since}::timestamptz[]) WITH ORDINALITY AS k(customer_id, agent_id, since, i))
    SELECT k.i, e.chat_id, t.type, (e.payload->'participant'->>'joinedSeq')::bigint AS joined_seq, e.seq AS end_seq, e.tm_create AS tm_end
      FROM k JOIN events e ON e.type = 'participant_left' AND e.customer_id = k.customer_id
                          AND (e.payload->'participant'->>'ownerId') = k.agent_id::text AND e.tm_create >= k.since
             JOIN talks t ON t.id = e.chat_id
    UNION ALL
    SELECT k.i, p.chat_id, t.type, p.joined_seq, t.last_seq AS end_seq, t.tm_delete AS tm_end
      FROM k JOIN participants p ON p.owner_id = k.agent_id AND p.customer_id = k.customer_id
             JOIN talks t ON t.id = p.chat_id AND t.customer_id = k.customer_id AND t.tm_delete >= k.since
     ORDER BY i, chat_id, end_seq`.execute(db);
  for (const row of rows) {
    result[Number(row.i) - 1]?.push({
      talkId: row.chat_id as TalkId,
      type: row.type as TalkType,
      joinedSeq: Number(row.joined_seq),
      endSeq: Number(row.end_seq),
      tmEnd: new Date(row.tm_end),
    });
  }
  return result;
}
