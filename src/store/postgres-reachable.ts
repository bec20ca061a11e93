/**
 * Start-up against a Postgres that is not up yet: connecting is retried with backoff for
 * TALKHUB_DB_STARTUP_TIMEOUT_MS, each failure told to be logged with the server and the error,
 * and then given up with one line naming DATABASE_URL, the server and the last error.
 */
import type pg from "pg";
import { errorLine } from "../error-line.js";
import { GaveUp, retryUntil, type FailedAttempt } from "../retry-until.js";

/** host:port/database of a Postgres URL: no user, no password. */
export function postgresServer(url: string): string {
  const parsed = new URL(url);
  return `${parsed.hostname}:${parsed.port === "" ? "5432" : parsed.port}${parsed.pathname === "/" ? "" : parsed.pathname}`;
}

/** Postgres could not be reached (or refused the connection) at start; the message is one line. */
export class DatabaseUnreachable extends Error {
  readonly code = "database_unreachable";
  constructor(server: string, why: string, cause: unknown) {
    super(`DATABASE_URL: Postgres at ${server} ${why}`, { cause });
    this.name = "DatabaseUnreachable";
  }
}

const retryableCodes = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EPIPE",
  // the database system is starting up / shutting down; too many connections
  "57P03",
  "53300",
]);

/**
 * Whether a failure to connect may pass by itself: the server down, starting or full. A wrong
 * password or database name does not, and is reported at once.
 */
export function retryableConnectError(error: unknown): boolean {
  if (error instanceof AggregateError) return error.errors.length > 0 && error.errors.every(retryableConnectError);
  if (!(error instanceof Error)) return false;
  const code = "code" in error ? String(error.code) : "";
  // pg's own words for its connection timeout and for a server that went away mid-handshake.
  return retryableCodes.has(code) || /timeout exceeded when trying to connect|Connection terminated/i.test(error.message);
}

/** Connects once (and lets go of the connection), retrying for `timeoutMs`. */
export async function waitForPostgres(
  pool: pg.Pool,
  url: string,
  timeoutMs: number,
  onFailure: (failure: FailedAttempt & { readonly server: string }) => void,
): Promise<void> {
  const server = postgresServer(url);
  try {
    await retryUntil(
      async () => {
        const client = await pool.connect();
        client.release();
      },
      { timeoutMs, retryable: retryableConnectError, onFailure: (failure) => onFailure({ ...failure, server }) },
    );
  } catch (error) {
    if (error instanceof GaveUp) {
      const seconds = Math.round(error.elapsedMs / 100) / 10;
      throw new DatabaseUnreachable(
        server,
        `not reachable: ${error.attempts} attempt${error.attempts === 1 ? "" : "s"} in ${seconds} s (TALKHUB_DB_STARTUP_TIMEOUT_MS=${timeoutMs}), the last: ${errorLine(error.cause)}`,
        error.cause,
      );
    }
    throw new DatabaseUnreachable(server, `refused the connection: ${errorLine(error)}`, error);
  }
}
