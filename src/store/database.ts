import { PGlite } from "@electric-sql/pglite";
import { Kysely, PostgresDialect, type LogEvent } from "kysely";
import { PGliteDialect } from "kysely-pglite-dialect";
import pg from "pg";
import type { DatabaseConfig } from "../config.js";
import { makePrivateDir } from "../data-dir.js";
import type { FailedAttempt } from "../retry-until.js";
import { migrateToLatest, pendingMigrations, SchemaBehind } from "./migrator.js";
import { waitForPostgres } from "./postgres-reachable.js";
import { startFromTemplate } from "./pglite-template.js";
import type { Schema } from "./schema/index.js";

/** The database handle the store functions take; a transaction is one too. */
export type Executor = Kysely<Schema>;

export interface Database {
  readonly db: Executor;
  readonly kind: DatabaseConfig["kind"];
  /** Resolves when a trivial query answers; rejects otherwise. */
  ping(): Promise<void>;
  /** The migrations this open applied, in order; none when the schema was up to date. */
  readonly migrated: readonly string[];
  /** Pool use (Postgres); undefined on the embedded database. */
  poolStats(): { total: number; idle: number; waiting: number } | undefined;
  close(): Promise<void>;
}

export interface OpenOptions {
  /**
   * Told the SQL of every statement sent to the database, BEGIN and COMMIT included, failed
   * ones too: how tests count round trips per operation. Off unless given.
   */
  readonly onStatement?: (sql: string) => void;
  /**
   * "apply" (the default) brings the schema up to date; "require" only checks it and throws
   * SchemaBehind when a migration is pending (deploys that run `npm run migrate` first).
   */
  readonly migrations?: "apply" | "require";
  /**
   * Told every failed attempt to reach Postgres while it retries at start (for
   * config.startupTimeoutMs), with the server (host:port/database) and the error.
   */
  readonly onConnectFailure?: (failure: FailedAttempt & { readonly server: string }) => void;
}

/** Opens Postgres or the embedded PGlite, and migrates the schema to the latest version (or checks it is). */
export async function openDatabase(config: DatabaseConfig, options: OpenOptions = {}): Promise<Database> {
  const { onStatement, migrations = "apply", onConnectFailure = () => undefined } = options;
  const log = onStatement === undefined ? {} : { log: (event: LogEvent) => onStatement(event.query.sql) };
  let db: Executor;
  let pool: pg.Pool | undefined;
  if (config.kind === "postgres") {
    pool = new pg.Pool({
      connectionString: config.url,
      max: config.poolSize,
      // Fail fast while the server is down instead of queueing requests behind it.
      connectionTimeoutMillis: 5000,
    });
    // A connection dropping (the server stopped) must not crash the process: idle ones report
    // on the pool, checked-out ones on their client. The query in flight fails (UNAVAILABLE)
    // and the pool discards the broken connection when it is released.
    pool.on("error", () => undefined);
    pool.on("connect", (client) => client.on("error", () => undefined));
    db = new Kysely<Schema>({ dialect: new PostgresDialect({ pool }), ...log });
    try {
      await waitForPostgres(pool, config.url, config.startupTimeoutMs ?? 0, onConnectFailure);
    } catch (error) {
      await db.destroy();
      throw error;
    }
  } else {
    // PGlite would create pgdata world-readable; made here first, it stays the owner's.
    let pglite: PGlite;
    if (config.dataDir === null) pglite = new PGlite();
    else {
      const pgdata = `${config.dataDir}/pgdata`;
      makePrivateDir(config.dataDir);
      if (!startFromTemplate(pgdata)) makePrivateDir(pgdata);
      pglite = new PGlite(pgdata);
    }
    await pglite.waitReady;
    db = new Kysely<Schema>({ dialect: new PGliteDialect(pglite), ...log });
  }
  let migrated: string[] = [];
  try {
    const unknownDb = db as unknown as Kysely<unknown>;
    if (migrations === "apply") migrated = await migrateToLatest(unknownDb);
    else {
      const pending = await pendingMigrations(unknownDb);
      if (pending.length > 0) throw new SchemaBehind(pending);
    }
  } catch (error) {
    await db.destroy();
    throw error;
  }
  return {
    db,
    kind: config.kind,
    migrated,
    ping: async () => {
      await db.selectNoFrom((eb) => eb.lit(1).as("one")).execute();
    },
    poolStats: () => (pool === undefined ? undefined : { total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }),
    close: () => db.destroy(),
  };
}
