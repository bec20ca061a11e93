import { Migrator, type Kysely, type Migration, type MigrationProvider } from "kysely";
import * as initial from "./migrations/2026-11-25T00-initial.js";
import * as rateBuckets from "./migrations/2026-12-01T00-rate-buckets.js";
import * as participantActivity from "./migrations/2026-12-02T00-participant-activity.js";
import * as eventDepartures from "./migrations/2026-12-02T01-event-departures.js";

/** Migrations in order, keyed by their timestamped names; bundled so no file system scan is needed. */
const migrations: Record<string, Migration> = {
  "2026-11-25T00-initial": initial,
  "2026-12-01T00-rate-buckets": rateBuckets,
  "2026-12-02T00-participant-activity": participantActivity,
  "2026-12-02T01-event-departures": eventDepartures,
};

const provider: MigrationProvider = { getMigrations: async () => migrations };

/** The names of every migration this build knows, in order. */
export const migrationNames: readonly string[] = Object.keys(migrations);

/**
 * The database's schema is older than this build's, and the process was told not to migrate
 * (TALKHUB_MIGRATE_AT_START=false): it refuses to run on the old schema.
 */
export class SchemaBehind extends Error {
  readonly code = "schema_behind";
  constructor(readonly pending: readonly string[]) {
    const count = pending.length === 1 ? "1 migration is" : `${pending.length} migrations are`;
    super(
      `the database schema is behind: ${count} pending (${pending.join(", ")}); run npm run migrate first (node dist/migrate.js in a production install), or unset TALKHUB_MIGRATE_AT_START`,
    );
    this.name = "SchemaBehind";
  }
}

/**
 * Brings the schema up to date; safe to run from several processes at once (Kysely takes a
 * lock). Returns the names of the migrations it applied, none when the schema was up to date.
 */
export async function migrateToLatest(db: Kysely<unknown>): Promise<string[]> {
  const { error, results } = await new Migrator({ db, provider }).migrateToLatest();
  if (error !== undefined) {
    const failed = results?.find((r) => r.status === "Error")?.migrationName;
    // No failed migration: it failed before any ran (connecting, taking the migration lock).
    throw new Error(failed === undefined ? "migrating failed before any migration ran" : `migration ${failed} failed`, { cause: error });
  }
  return (results ?? []).filter((r) => r.status === "Success").map((r) => r.migrationName);
}

/** The migrations not yet applied to the database, in order; reads only, creates nothing. */
export async function pendingMigrations(db: Kysely<unknown>): Promise<string[]> {
  const known = await new Migrator({ db, provider }).getMigrations();
  return known.filter((m) => m.executedAt === undefined).map((m) => m.name);
}
