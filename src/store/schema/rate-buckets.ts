import type { ColumnType } from "kysely";

/**
 * rate_buckets: one token bucket per (customer, agent, class of write), shared by every
 * process. A row whose bucket is full again (full_at passed) says nothing and may be deleted.
 */
export interface RateBucketsTable {
  customer_id: string;
  agent_id: string;
  class: string;
  /** Tokens left at tm_update. */
  tokens: number;
  /** Tokens the last take got (the statement returns it; RETURNING cannot see old values). */
  granted: number;
  /** The bucket's size and refill per second at the last take. */
  burst: number;
  rate: number;
  tm_update: ColumnType<Date, Date, Date>;
  full_at: ColumnType<Date, Date, Date>;
}
