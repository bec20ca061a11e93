import { Migrator, type Kysely, type Migration, type MigrationProvider } from "kysely";
import * as initial from "./migrations/2026-11-25T00-initial.js";
import * as rateBuckets from "./migrations/2026-12-01T00-rate-buckets.js";
import * as participantActivity from "./migrations/2026-12-02T00-participant-activity.js";

/** Migrations in order, keyed by their timestamped names; bundled so no file system scan is needed. */
const migrations: Record<string, Migration> = {
  "2026-11-25T00-initial": initial,
  "2026-12-01T00-rate-buckets": rateBuckets,
  "2026-12-02T00-participant-activity": participantActivity,
};

const provider: MigrationProvider = { getMigrations: async () => migrations };

/** Brings the schema up to date; safe to run from several processes at once (Kysely takes a lock). */
export async function migrateToLatest(db: Kysely<unknown>): Promise<void> {
  const { error, results } = await new Migrator({ db, provider }).migrateToLatest();
  if (error !== undefined) {
    const failed = results?.find((r) => r.status === "Error")?.migrationName ?? "unknown";
    throw new Error(`migration ${failed} failed`, { cause: error });
  }
}
