import type { ColumnType } from "kysely";

/** agents: the directory of a customer's agents. */
export interface AgentsTable {
  id: string;
  customer_id: string;
  name: string;
  role: string;
  tm_create: ColumnType<Date, Date, never>;
  tm_update: Date;
  tm_delete: Date | null;
}
