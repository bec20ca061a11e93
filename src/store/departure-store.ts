/**
 * The talks an agent's view of ended since a time: those it left (its participant_left, found in
 * the log through the events_departures index, since the membership row is gone) and those
 * deleted while it took part (the membership row stays with the soft-deleted talk).
 */
import { sql } from "kysely";
import type { AgentId, CustomerId, TalkId } from "../domain/ids.js";
import type { TalkType } from "../domain/model.js";
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
  const { rows } = await sql<{ chat_id: string; type: string; joined_seq: string | number; end_seq: string | number; tm_end: Date | string }>`
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
