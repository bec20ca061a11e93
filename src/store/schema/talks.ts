import type { ColumnType } from "kysely";

/** talks: one row per talk; last_seq is the head of its event log, and a write moves it by compare-and-set or under the row lock. */
export interface TalksTable {
  id: string;
  customer_id: string;
  type: string;
  name: string;
  detail: string;
  status: string;
  member_count: number;
  last_seq: ColumnType<number, number, number>;
  /** "<agent>:<agent>" (sorted) for a normal talk with both agents in it; unique per customer. */
  pair_key: string | null;
  tm_create: ColumnType<Date, Date, never>;
  tm_update: Date;
  tm_delete: Date | null;
  tm_activity: Date;
}
