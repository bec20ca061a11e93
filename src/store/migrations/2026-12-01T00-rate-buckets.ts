import { sql, type Kysely } from "kysely";

/**
 * Token buckets of the per-agent write limits, shared by every process. Unlogged: a take
 * writes no WAL and so commits without waiting for a disk flush (a few ms per take otherwise);
 * after a crash the table comes back empty, which only means every bucket starts full.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("rate_buckets")
    .modifyFront(sql`unlogged`)
    .addColumn("customer_id", "uuid", (c) => c.notNull())
    .addColumn("agent_id", "uuid", (c) => c.notNull())
    .addColumn("class", "text", (c) => c.notNull())
    .addColumn("tokens", "float8", (c) => c.notNull())
    .addColumn("granted", "integer", (c) => c.notNull())
    .addColumn("burst", "float8", (c) => c.notNull())
    .addColumn("rate", "float8", (c) => c.notNull())
    .addColumn("tm_update", "timestamptz", (c) => c.notNull())
    .addColumn("full_at", "timestamptz", (c) => c.notNull())
    .addPrimaryKeyConstraint("rate_buckets_pkey", ["customer_id", "agent_id", "class"])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable("rate_buckets").execute();
}
