/** Process entry: config -> service; SIGTERM/SIGINT stop it gracefully. */
import { NatsUnreachable } from "./bus/nats-bus.js";
import { ConfigError, InvalidConfig, readConfig, type Config } from "./config.js";
import { unknownVariables } from "./config-variables.js";
import { DataDirInUse } from "./data-dir-lock.js";
import { demoIntroduction } from "./demo.js";
import { startService } from "./service.js";
import { SchemaBehind } from "./store/migrator.js";
import { DatabaseUnreachable } from "./store/postgres-reachable.js";

/** Start-up failures an operator can act on: each is one line on stderr, then exit status 1. */
function notStarted(lines: readonly string[]): never {
  for (const line of lines) console.error(`Talkhub not started: ${line}`);
  process.exit(1);
}

// A misspelt variable would otherwise be ignored without a word.
for (const { name, suggestion } of unknownVariables(process.env)) {
  console.warn(
    `Talkhub: ${name} is not a Talkhub variable and is ignored${suggestion === undefined ? "" : `; did you mean ${suggestion}?`}`,
  );
}

let config: Config;
try {
  config = readConfig();
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  notStarted(error instanceof InvalidConfig ? error.problems.map((p) => p.message) : [error.message]);
}
const service = await startService(config).catch((error: unknown) => {
  // Another process holds the data dir, the schema is behind and migrating was left to
  // `npm run migrate`, Postgres or NATS did not answer in time: say so in one line, before
  // listening, and exit non-zero.
  const actionable = [DataDirInUse, SchemaBehind, ConfigError, DatabaseUnreachable, NatsUnreachable];
  if (!actionable.some((kind) => error instanceof kind) || !(error instanceof Error)) throw error;
  notStarted([error.message]);
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
console.log(
  `Talkhub listening on :${service.port}${transport} (gRPC, Connect, gRPC-Web, REST /v1.0, WebSocket /v1.0/ws), ${operator}, data: ${where}`,
);
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
