import type { ColumnType } from "kysely";

/** reactions: one row per (message, agent, emoji); the key makes a repeated add a no-op. */
export interface ReactionsTable {
  message_id: string;
  owner_id: string;
  emoji: string;
  owner_type: string;
  tm_create: ColumnType<Date, Date, never>;
}
