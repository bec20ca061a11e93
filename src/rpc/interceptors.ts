import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { bearerOf } from "../auth/bearer.js";
import type { TokenVerifier } from "../auth/verifier.js";
import type { Callers } from "../domain/agents.js";
import { DomainError, Unauthenticated } from "../domain/model/errors.js";
import type { Identity } from "../domain/model/identity.js";
import { LiveBody } from "../live/live-body.js";
import { callerKey } from "./caller.js";
import { endOfCall, isCancellation, recognized, toConnectError } from "./errors.js";

/**
 * Maps every error a handler throws, also midway through a response stream, to its gRPC code
 * (see errors.ts).
 */
export function errorInterceptor(onInternal: (error: unknown, procedure: string) => void): Interceptor {
  const convert = (thrown: unknown, procedure: string, signal: AbortSignal): ConnectError => {
    // Once the client has gone (or the deadline passed), what fails next (a request stream
    // closed early, a write to a reset stream) is that end, not a fault of the service. A
    // socket error of that end looks like the database's, so this is decided first.
    const ended = decided(thrown) ? undefined : endOfCall(signal);
    if (ended !== undefined) return ended;
    const error = recognized(thrown);
    if (!(error instanceof ConnectError) && !(error instanceof DomainError) && !isCancellation(error)) onInternal(error, procedure);
    return toConnectError(error);
  };
  return (next) => async (req) => {
    try {
      const res = await next(req);
      if (!res.stream) return res;
      const messages = res.message;
      // A live body is mapped once, at its end, not around each message.
      if (messages instanceof LiveBody) {
        messages.onEnd((error) => (error === undefined ? undefined : convert(error, req.url, req.signal)));
        return res;
      }
      async function* converted() {
        try {
          yield* messages;
        } catch (error) {
          throw convert(error, req.url, req.signal);
        }
      }
      return { ...res, message: converted() };
    } catch (error) {
      throw convert(error, req.url, req.signal);
    }
  };
}

/** Codes of the service's own answers, kept even when the client has already gone. */
const decided = (error: unknown): boolean =>
  error instanceof DomainError || (error instanceof ConnectError && ![Code.Internal, Code.Unknown, Code.Aborted].includes(error.code));

/** Reads "Authorization: Bearer <token>" (the HTTP layer turns ?token= into it). */
export function bearerToken(authorization: string | null): string {
  if (authorization === null) throw new Unauthenticated("missing Authorization: Bearer token");
  const token = bearerOf(authorization);
  if (token === undefined) throw new Unauthenticated('the Authorization header must be "Bearer <token>"');
  return token;
}

/** Turns a token into the verified caller, or throws Unauthenticated. */
export type CallerAuthenticator = (token: string) => Promise<Identity>;

/**
 * The check of a token every edge makes: verified, and its agent entered into the directory
 * of callers. The auth interceptor makes it for every call, the WebSocket for its upgrade.
 */
export function callerAuthenticator(verify: TokenVerifier, callers: Callers): CallerAuthenticator {
  return async (token) => {
    const caller = await verify(token);
    await callers.ensure(caller);
    return caller;
  };
}

/**
 * Verifies the caller's token, enters the caller into the directory, and puts it on the
 * context. Services named in `open` (health, reflection) need no token.
 */
export function authInterceptor(verify: TokenVerifier, callers: Callers, open: ReadonlySet<string>): Interceptor {
  const authenticate = callerAuthenticator(verify, callers);
  return (next) => async (req) => {
    if (open.has(req.service.typeName)) return next(req);
    const caller = await authenticate(bearerToken(req.header.get("authorization")));
    req.contextValues.set(callerKey, caller);
    return next(req);
  };
}
