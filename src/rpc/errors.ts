import { Code, ConnectError } from "@connectrpc/connect";
import { DomainError, type ErrorKind } from "../domain/model/errors.js";
import { translateStoreError } from "../store/errors.js";

/** The one place where domain error kinds become gRPC codes. */
function codeOf(kind: ErrorKind): Code {
  switch (kind) {
    case "invalid_argument":
      return Code.InvalidArgument;
    case "not_found":
      return Code.NotFound;
    case "already_exists":
      return Code.AlreadyExists;
    case "failed_precondition":
      return Code.FailedPrecondition;
    case "permission_denied":
      return Code.PermissionDenied;
    case "unauthenticated":
      return Code.Unauthenticated;
    case "resource_exhausted":
      return Code.ResourceExhausted;
    case "out_of_range":
      return Code.OutOfRange;
    case "canceled":
      return Code.Canceled;
    case "unavailable":
      return Code.Unavailable;
    default: {
      const unreachable: never = kind;
      throw new Error(`unmapped error kind ${String(unreachable)}`);
    }
  }
}

/** The Connect protocol's name of a code, e.g. "not_found": the code as every edge writes it in JSON and logs. */
export function codeName(code: Code): string {
  return Code[code].replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
}

/** Whether an error only says that the client went away (an aborted signal). */
export function isCancellation(error: unknown): boolean {
  return error instanceof Error && error.name === "AbortError";
}

/**
 * How a call whose signal aborted ended: DEADLINE_EXCEEDED when its deadline passed, CANCELED
 * otherwise (the client cancelled, reset its stream or closed its connection, whatever reset
 * code or socket error the transport reported); undefined while the call is still on.
 */
export function endOfCall(signal: AbortSignal): ConnectError | undefined {
  if (!signal.aborted) return undefined;
  const reason: unknown = signal.reason;
  if (reason instanceof ConnectError && reason.code === Code.DeadlineExceeded) return reason;
  return new ConnectError("the client cancelled the call", Code.Canceled, undefined, undefined, reason);
}

/**
 * What a handler threw, as the service answers it: a driver error that says the database
 * cannot be reached (refused, reset, terminated, shutting down) is Unavailable, whichever use
 * case met it, so no use case has to catch it to keep an outage from answering INTERNAL.
 */
export function recognized(error: unknown): unknown {
  return error instanceof DomainError || error instanceof ConnectError ? error : translateStoreError(error);
}

/**
 * Converts anything a handler throws into a ConnectError. Domain errors (and driver errors
 * recognized as one) keep their message; anything else is INTERNAL with a generic message
 * (its details go to the log only).
 */
export function toConnectError(thrown: unknown): ConnectError {
  const error = recognized(thrown);
  if (error instanceof ConnectError) return error;
  if (isCancellation(error)) return new ConnectError("the call was cancelled", Code.Canceled, undefined, undefined, error);
  if (error instanceof DomainError) {
    const connectError = new ConnectError(error.message, codeOf(error.kind), undefined, undefined, error);
    if (error.kind === "resource_exhausted" && "retryAfterMs" in error && typeof error.retryAfterMs === "number") {
      connectError.metadata.set("retry-after", String(Math.ceil(error.retryAfterMs / 1000)));
    }
    return connectError;
  }
  return new ConnectError("internal error", Code.Internal, undefined, undefined, error);
}
