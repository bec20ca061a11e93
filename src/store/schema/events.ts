import type { ColumnType } from "kysely";

/** events: each talk's append-only log, keyed by (chat_id, seq). */
export interface EventsTable {
  chat_id: string;
  seq: ColumnType<number, number, never>;
  customer_id: string;
  type: string;
  actor_type: string;
  actor_id: string | null;
  tm_create: ColumnType<Date, Date, never>;
  /** The resource(s) after the change, as JSON. */
  payload: ColumnType<unknown, string, never>;
}
