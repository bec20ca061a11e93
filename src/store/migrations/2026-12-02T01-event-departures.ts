import { sql, type Kysely } from "kysely";

/**
 * An agent's departures by time: WatchEvents resuming from a cursor delivers the
 * participant_left of every talk the agent left while away, and finds them here (the
 * membership is gone; only the log remembers it). Partial, so it holds the leave events only.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    CREATE INDEX events_departures ON events (customer_id, (payload->'participant'->>'ownerId'), tm_create)
    WHERE type = 'participant_left'`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex("events_departures").execute();
}
