/**
 * Domain errors: values with a kind, no transport knowledge. rpc/errors.ts maps each kind to
 * a gRPC code in one switch; anything else that escapes becomes INTERNAL there.
 */
export type ErrorKind =
  | "invalid_argument"
  | "not_found"
  | "already_exists"
  | "failed_precondition"
  | "permission_denied"
  | "unauthenticated"
  | "resource_exhausted"
  | "out_of_range"
  | "canceled"
  | "unavailable";

export abstract class DomainError extends Error {
  abstract readonly kind: ErrorKind;
}

/** A request field is missing or malformed; the message names the field. */
export class InvalidArgument extends DomainError {
  readonly kind = "invalid_argument";
  constructor(
    readonly field: string,
    problem: string,
  ) {
    super(`${field}: ${problem}`);
  }
}

/** The resource does not exist or is not visible to the caller (the two look the same). */
export class NotFound extends DomainError {
  readonly kind = "not_found";
  constructor(resource: string, id?: string) {
    super(id === undefined ? `${resource} not found` : `${resource} ${id} not found`);
  }
}

export class AlreadyExists extends DomainError {
  readonly kind = "already_exists";
}

/** The request is valid but the resource's state does not allow it (e.g. a closed talk). */
export class FailedPrecondition extends DomainError {
  readonly kind = "failed_precondition";
}

/** The caller can see the resource but may not do this to it. */
export class PermissionDenied extends DomainError {
  readonly kind = "permission_denied";
}

export class Unauthenticated extends DomainError {
  readonly kind = "unauthenticated";
}

/** A limit was reached; retryAfterMs tells when trying again may succeed. */
export class ResourceExhausted extends DomainError {
  readonly kind = "resource_exhausted";
  constructor(
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

/** A position outside what is kept or exists, e.g. an after_seq older than the retained log. */
export class OutOfRange extends DomainError {
  readonly kind = "out_of_range";
}

/** The client went away or cancelled; nothing failed. */
export class Canceled extends DomainError {
  readonly kind = "canceled";
}

/** A dependency (database, bus) cannot be reached; the request may be retried. */
export class Unavailable extends DomainError {
  readonly kind = "unavailable";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}
