/**
 * The variables readConfig reads (each documented in docs/configuration.md), and the
 * TALKHUB_* variables of an environment that are none of them: a typo would otherwise be
 * ignored without a word.
 */

/** Every variable the service reads; a unit test keeps it equal to docs/configuration.md. */
export const knownVariables: readonly string[] = [
  "DATABASE_URL",
  "NATS_URL",
  "TALKHUB_PORT",
  "TALKHUB_HOST",
  "TALKHUB_TLS_CERT",
  "TALKHUB_TLS_KEY",
  "TALKHUB_OPERATOR_PORT",
  "TALKHUB_OPERATOR_HOST",
  "TALKHUB_DB_POOL_SIZE",
  "TALKHUB_DB_STARTUP_TIMEOUT_MS",
  "TALKHUB_MIGRATE_AT_START",
  "TALKHUB_DATA_DIR",
  "TALKHUB_JWT_SECRET",
  "TALKHUB_JWKS_URL",
  "TALKHUB_JWT_ISSUER",
  "TALKHUB_JWT_AUDIENCE",
  "TALKHUB_ALLOW_TOKENS_WITHOUT_EXP",
  "TALKHUB_NATS_PREFIX",
  "TALKHUB_NATS_STARTUP_TIMEOUT_MS",
  "TALKHUB_HEARTBEAT_MS",
  "TALKHUB_GAP_CHECK_MS",
  "TALKHUB_MEMBERSHIP_CHECK_MS",
  "TALKHUB_CALLER_RECHECK_MS",
  "TALKHUB_STREAM_MAX_QUEUED",
  "TALKHUB_EVENT_RETENTION_DAYS",
  "TALKHUB_CORS_ORIGINS",
  "TALKHUB_MAX_REQUEST_BYTES",
  "TALKHUB_MAX_STREAMS_PER_CONNECTION",
  "TALKHUB_IDLE_TIMEOUT_MS",
  "TALKHUB_HEADERS_TIMEOUT_MS",
  "TALKHUB_REQUEST_TIMEOUT_MS",
  "TALKHUB_UNAUTHENTICATED_BYTES_PER_CONNECTION",
  "TALKHUB_H2_SESSION_MEMORY_MB",
  ...["SEND", "TALK_CREATE", "PARTICIPANT", "REACTION", "EDIT", "DELETE", "TALK_STATUS", "AGENT_ADMIN"].flatMap((write) => [
    `TALKHUB_${write}_RATE`,
    `TALKHUB_${write}_BURST`,
  ]),
  "TALKHUB_STREAMS_PER_AGENT",
  "TALKHUB_LOG_LEVEL",
];

/** Read by the test suites and the bench, not by the service; a developer's shell may hold them. */
const toolingVariables = /^TALKHUB_(TEST_.*|NOT_RUN_FILE|CHROMIUM)$/;

export interface UnknownVariable {
  readonly name: string;
  /** The known name it most likely meant, when one is close. */
  readonly suggestion: string | undefined;
}

/** The TALKHUB_* variables set in `env` that the service does not read, in name order. */
export function unknownVariables(env: Readonly<Record<string, string | undefined>>): UnknownVariable[] {
  return Object.keys(env)
    .filter((name) => name.startsWith("TALKHUB_") && !knownVariables.includes(name) && !toolingVariables.test(name))
    .sort()
    .map((name) => ({ name, suggestion: nearest(name) }));
}

/** The known name within a few edits of `name` (a typo, a missing or swapped word part). */
function nearest(name: string): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const known of knownVariables) {
    const distance = editDistance(name, known);
    if (best === undefined || distance < best.distance) best = { name: known, distance };
  }
  // One edit in three of the part after TALKHUB_: LOG_LEVL is LOG_LEVEL, FOO is not PORT.
  const allowed = Math.max(1, Math.floor((name.length - "TALKHUB_".length) / 3));
  return best !== undefined && best.distance <= allowed ? best.name : undefined;
}

/** Levenshtein distance: insertions, deletions and substitutions. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
