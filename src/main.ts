/** Process entry: config -> service; SIGTERM/SIGINT stop it gracefully. */
import { ConfigError, readConfig } from "./config.js";
import { DataDirInUse } from "./data-dir-lock.js";
import { demoIntroduction } from "./demo.js";
import { startService } from "./service.js";
import { SchemaBehind } from "./store/migrator.js";

/** A configuration that cannot be used is said in one line, without a stack trace. */
function configured(): ReturnType<typeof readConfig> {
  try {
    return readConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(`Talkhub not started: ${error.message}`);
    process.exit(1);
  }
}

const config = configured();
const service = await startService(config).catch((error: unknown) => {
  // Another process holds the data dir, the schema is behind and migrating was left to
  // `npm run migrate`, or a configured file cannot be used: say so in one line, before
  // listening, and exit non-zero.
  if (!(error instanceof DataDirInUse || error instanceof SchemaBehind || error instanceof ConfigError)) throw error;
  console.error(`Talkhub not started: ${error.message}`);
  process.exit(1);
});
const where = config.database.kind === "postgres" ? "Postgres" : `embedded PGlite in ${config.dataDir}`;
const operator =
  config.operator && service.operatorUrl !== undefined
    ? `operator endpoints (/metrics, /healthz, /readyz) on ${config.operator.host}:${new URL(service.operatorUrl).port}`
    : "operator endpoints off";
// The demo people (and demo.json) exist before the listening line, so whoever waits for that
// line can use them.
const demo =
  config.database.kind === "pglite" && config.auth.secret === undefined && service.secret !== undefined
    ? await demoIntroduction(service.deps, config.dataDir, service.secret, service.port, config.tls !== undefined)
    : undefined;
const transport = config.tls === undefined ? "" : " over TLS (h2 and HTTP/1.1 by ALPN; https://, wss://)";
console.log(`Talkhub listening on :${service.port}${transport} (gRPC, Connect, gRPC-Web, REST /v1.0, WebSocket /v1.0/ws), ${operator}, data: ${where}`);
if (demo !== undefined) console.log(`\n${demo}\n`);

let stopping = false;
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    console.log(`${signal}: stopping`);
    service.close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error("shutdown failed:", error);
        process.exit(1);
      },
    );
  });
}
