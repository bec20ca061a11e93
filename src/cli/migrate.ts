/**
 * npm run migrate (node dist/migrate.js after a build): brings the database's schema up to date
 * and exits, for deploys that migrate before rolling out the processes that run with
 * TALKHUB_MIGRATE_AT_START=false. Postgres with DATABASE_URL, else the embedded database in
 * TALKHUB_DATA_DIR, whose lock it takes as the service does: it refuses while a service runs there.
 * Prints what it applied; on failure one line on stderr and exit status 1.
 */
import { readConfig } from "../config.js";
import { errorLine } from "../error-line.js";
import { lockDataDir, type DataDirLock } from "../data-dir-lock.js";
import { openDatabase } from "../store/database.js";

async function migrate(): Promise<string> {
  const config = readConfig();
  let lock: DataDirLock | undefined;
  if (config.database.kind === "pglite" && config.database.dataDir !== null) lock = await lockDataDir(config.database.dataDir);
  try {
    const database = await openDatabase(config.database, {
      onConnectFailure: ({ server, attempt, error, retryInMs }) =>
        console.error(`Postgres at ${server} not reachable yet (attempt ${attempt}: ${errorLine(error)}); retrying in ${retryInMs} ms`),
    });
    await database.close();
    const where = config.database.kind === "postgres" ? "Postgres" : `embedded PGlite in ${config.dataDir}`;
    return database.migrated.length === 0
      ? `nothing to migrate: the schema is up to date (${where})`
      : `applied ${database.migrated.length} migration${database.migrated.length === 1 ? "" : "s"} (${where}): ${database.migrated.join(", ")}`;
  } finally {
    await lock?.release();
  }
}

try {
  console.log(await migrate());
} catch (error) {
  console.error(`npm run migrate failed: ${errorLine(error)}`);
  process.exit(1);
}
