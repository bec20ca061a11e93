/**
 * The one database factory of the suites: a fresh Postgres database per suite (or per process
 * suite), dropped afterwards. The embedded backend needs none: PGlite lives in the service.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import type { DatabaseConfig } from "../../src/config.js";
import { postgresAdminUrl } from "./reachability.js";

export interface TestDatabase {
  readonly name: string;
  readonly url: string;
  query<R extends Record<string, unknown> = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<R[]>;
  /** Ends the test's own connections, then drops the database (WITH FORCE: services may still hold some). */
  drop(): Promise<void>;
}

/** A service's setting for a database: the embedded one in memory, or a test database. */
export function databaseConfig(database: TestDatabase | undefined, poolSize = 10): DatabaseConfig {
  return database === undefined ? { kind: "pglite", dataDir: null } : { kind: "postgres", url: database.url, poolSize };
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `th_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: postgresAdminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(postgresAdminUrl);
  url.pathname = `/${name}`;
  const pool = new pg.Pool({ connectionString: url.toString(), max: 2 });
  // A pooled client cut by DROP DATABASE ... WITH (FORCE) reports an error: expected here.
  pool.on("error", () => undefined);
  let dropped = false;
  return {
    name,
    url: url.toString(),
    query: async <R extends Record<string, unknown>>(sql: string, params: unknown[] = []) => (await pool.query<R>(sql, params)).rows,
    drop: async () => {
      if (dropped) return;
      dropped = true;
      await pool.end().catch(() => undefined);
      try {
        await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await admin.end().catch(() => undefined);
      }
    },
  };
}
