/**
 * npm run migrate (node dist/migrate.js after a build): brings the database's schema up to date
 * and exits, for deploys that migrate before rolling out the processes that run with
 * TALKHUB_MIGRATE_AT_START=false. Postgres with DATABASE_URL, else the embedded database in
 * TALKHUB_DATA_DIR, whose lock it takes as the service does: it refuses while a service runs there.
 * Prints what it applied; on failure one line on stderr and exit status 1.
 */
import { readConfig } from "../config.js";
import { lockDataDir, type DataDirLock } from "../data-dir-lock.js";
import { openDatabase } from "../store/database.js";

/** An error and its causes in one line ("migration x failed: relation y exists"). */
function oneLine(error: unknown): string {
  const parts: string[] = [];
  for (let current: unknown = error; current !== undefined && parts.length < 5; ) {
    if (!(current instanceof Error)) {
      parts.push(String(current));
      break;
    }
    // pg reports a refused connection to several addresses as an AggregateError without a message.
    const inner = current instanceof AggregateError ? current.errors.map((e: unknown) => (e instanceof Error ? e.message : String(e))) : [];
    parts.push(current.message !== "" ? current.message : inner.join("; ") || current.name);
    current = current.cause;
  }
  return parts.join(": ").replaceAll(/\s*\n\s*/g, " ");
}

async function migrate(): Promise<string> {
  const config = readConfig();
  let lock: DataDirLock | undefined;
  if (config.database.kind === "pglite" && config.database.dataDir !== null) lock = await lockDataDir(config.database.dataDir);
  try {
    const database = await openDatabase(config.database);
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
  console.error(`npm run migrate failed: ${oneLine(error)}`);
  process.exit(1);
}
