import type { ColumnType } from "kysely";

/** participants: current memberships; a removed one is deleted, so re-adding makes a new row. */
export interface ParticipantsTable {
  id: string;
  customer_id: string;
  chat_id: string;
  owner_type: string;
  owner_id: string;
  /** The seq of the participant_joined event: an agent's feed of this talk starts after it. */
  joined_seq: ColumnType<number, number, never>;
  tm_joined: ColumnType<Date, Date, never>;
  /** A copy of the talk's tm_activity, kept by triggers (never written here): ListTalks' order. */
  tm_activity: ColumnType<Date, never, never>;
}
