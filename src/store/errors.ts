import { Unavailable } from "../domain/model/errors.js";

/** Postgres SQLSTATE classes and Node socket errors that mean "the database cannot be reached". */
const unavailableStates = new Set(["57P01", "57P02", "57P03", "53300"]);
const unavailableSocketCodes = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "ENOTFOUND", "EHOSTUNREACH"]);

function codeOf(error: unknown): string | undefined {
  if (typeof error === "object" && error !== null && "code" in error) {
    const code = (error as { code: unknown }).code;
    return typeof code === "string" ? code : undefined;
  }
  return undefined;
}

/** Whether a driver error is a Postgres unique violation (SQLSTATE 23505). */
export function isUniqueViolation(error: unknown): boolean {
  return codeOf(error) === "23505";
}

/**
 * Turns a driver error that means the database is unreachable into Unavailable, so callers
 * get a retryable code; other errors pass through unchanged. The RPC edge applies it to
 * whatever a handler throws (rpc/errors.ts), so use cases let driver errors pass.
 */
export function translateStoreError(error: unknown): unknown {
  const code = codeOf(error);
  const message = error instanceof Error ? error.message : "";
  if (
    (code !== undefined && (unavailableStates.has(code) || code.startsWith("08") || unavailableSocketCodes.has(code))) ||
    /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(message)
  ) {
    return new Unavailable("the database is unavailable", { cause: error });
  }
  return error;
}

/**
 * Runs a store operation, translating unreachable-database errors: for the code that decides on
 * Unavailable itself (the send batch fails whole, a live stream ends), not for use cases.
 */
export async function guarded<T>(operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (error) {
    throw translateStoreError(error);
  }
}
