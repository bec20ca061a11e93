/**
 * `npm run migrate` on its own, and a service told not to migrate (TALKHUB_MIGRATE_AT_START=false):
 * migrate applies what is pending and says so, a second run has nothing to do, a failure is one
 * line and a non-zero exit; the service refuses to start on an older schema, naming the pending
 * migrations and the command, and starts once it is migrated. On the embedded data dir, migrate
 * takes the service's lock and refuses while a service holds it.
 */
import { mkdtempSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { migrationNames } from "../../src/store/migrator.js";
import { postgresServer } from "../../src/store/postgres-reachable.js";
import { createTestDatabase } from "../support/database.js";
import { dependenciesReachable } from "../support/reachability.js";
import { killAllChildren, newSecret, runTalkhubCommand, spawnTalkhub, type TalkhubProcess } from "../support/processes.js";

const scratch = mkdtempSync(join(tmpdir(), "talkhub-migrate-"));
afterAll(async () => {
  await killAllChildren();
  rmSync(scratch, { recursive: true, force: true });
});

const migrate = (env: Record<string, string>) => runTalkhubCommand("migrate", env, 300_000);

/** Why a start failed (the spawn helper's message: exit code and output); fails the test if it started. */
async function refusal(env: Record<string, string>): Promise<string> {
  const started = await spawnTalkhub(env, 300_000).then(
    async (unexpected) => {
      await unexpected.stop();
      return undefined;
    },
    (error: unknown) => String(error),
  );
  if (started === undefined) throw new Error("the service started on an older schema");
  return started;
}

async function readyz(process: TalkhubProcess): Promise<number> {
  return (await fetch(`${process.url}/readyz`, { signal: AbortSignal.timeout(10_000) })).status;
}

const postgres = await dependenciesReachable("migrate (Postgres)", { postgres: true });

describe.skipIf(!postgres)("npm run migrate on Postgres, and a service that does not migrate at start", () => {
  it("refuses to start on a fresh database; migrate applies every migration, then has nothing to do; then the service starts", async () => {
    const database = await createTestDatabase();
    try {
      const env = { DATABASE_URL: database.url, TALKHUB_JWT_SECRET: newSecret(), TALKHUB_MIGRATE_AT_START: "false" };
      // A failing migrate runs beside the refused start: one line, status 1.
      const [refused, failed] = await Promise.all([
        refusal(env),
        migrate({ DATABASE_URL: `${database.url}_missing`, TALKHUB_JWT_SECRET: newSecret() }),
      ]);
      expect(refused).toMatch(/exited \(code [1-9]\d*, signal null\)/);
      expect(refused).toContain(
        `Talkhub not started: the database schema is behind: ${migrationNames.length} migrations are pending (${migrationNames.join(", ")}); run npm run migrate first`,
      );
      expect(refused).not.toMatch(/\n\s+at /);
      expect(refused).not.toMatch(/Talkhub listening/);
      // Checking created nothing, not even Kysely's bookkeeping tables.
      expect(await database.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).toEqual([]);

      expect(failed.code).toBe(1);
      expect(failed.stdout).toBe("");
      expect(failed.stderr.trim().split("\n")).toEqual([
        `npm run migrate failed: DATABASE_URL: Postgres at ${postgresServer(`${database.url}_missing`)} refused the connection: database "${database.name}_missing" does not exist`,
      ]);

      const first = await migrate({ DATABASE_URL: database.url });
      expect(first).toMatchObject({ code: 0, stderr: "" });
      expect(first.stdout.trim()).toBe(`applied ${migrationNames.length} migrations (Postgres): ${migrationNames.join(", ")}`);

      const second = await migrate({ DATABASE_URL: database.url });
      expect(second).toMatchObject({ code: 0, stderr: "" });
      expect(second.stdout.trim()).toBe("nothing to migrate: the schema is up to date (Postgres)");

      const service = await spawnTalkhub(env, 300_000);
      try {
        expect(await readyz(service)).toBe(200);
      } finally {
        await service.stop();
      }
    } finally {
      await database.drop();
    }
  }, 300_000);
});

describe("npm run migrate on the embedded data dir", () => {
  it("migrates a new data dir, a service that does not migrate starts on it, and migrate refuses while the service holds the dir", async () => {
    const dataDir = join(scratch, "data");
    const first = await migrate({ TALKHUB_DATA_DIR: dataDir });
    expect(first).toMatchObject({ code: 0, stderr: "" });
    expect(first.stdout.trim()).toBe(
      `applied ${migrationNames.length} migrations (embedded PGlite in ${dataDir}): ${migrationNames.join(", ")}`,
    );

    const service = await spawnTalkhub({ TALKHUB_DATA_DIR: dataDir, TALKHUB_MIGRATE_AT_START: "false" }, 300_000);
    try {
      expect(await readyz(service)).toBe(200);
      const held = await migrate({ TALKHUB_DATA_DIR: dataDir });
      expect(held.code).toBe(1);
      expect(held.stdout).toBe("");
      expect(held.stderr.trim().split("\n")).toEqual([
        `npm run migrate failed: the data dir ${realpathSync(dataDir)} is in use by another process (pid ${service.pid}); stop it first, or set TALKHUB_DATA_DIR to another dir`,
      ]);
      expect(await readyz(service)).toBe(200);
    } finally {
      await service.stop();
    }
  }, 300_000);
});
