import { ConnectError, type Interceptor } from "@connectrpc/connect";
import { bearerOf } from "../auth/bearer.js";
import type { TokenVerifier } from "../auth/verifier.js";
import type { Callers } from "../domain/agents.js";
import { DomainError, Unauthenticated } from "../domain/errors.js";
import { callerKey } from "./caller.js";
import { isCancellation, toConnectError } from "./errors.js";

/**
 * Maps every error a handler throws, also midway through a response stream, to its gRPC code
 * (see errors.ts).
 */
export function errorInterceptor(onInternal: (error: unknown, procedure: string) => void): Interceptor {
  const convert = (error: unknown, procedure: string): ConnectError => {
    if (!(error instanceof ConnectError) && !(error instanceof DomainError) && !isCancellation(error)) onInternal(error, procedure);
    return toConnectError(error);
  };
  return (next) => async (req) => {
    try {
      const res = await next(req);
      if (!res.stream) return res;
      const messages = res.message;
      async function* converted() {
        try {
          yield* messages;
        } catch (error) {
          throw convert(error, req.url);
        }
      }
      return { ...res, message: converted() };
    } catch (error) {
      throw convert(error, req.url);
    }
  };
}

/** Reads "Authorization: Bearer <token>" (the HTTP layer turns ?token= into it). */
export function bearerToken(authorization: string | null): string {
  if (authorization === null) throw new Unauthenticated("missing Authorization: Bearer token");
  const token = bearerOf(authorization);
  if (token === undefined) throw new Unauthenticated("the Authorization header must be \"Bearer <token>\"");
  return token;
}

/**
 * Verifies the caller's token, enters the caller into the directory, and puts it on the
 * context. Services named in `open` (health, reflection) need no token.
 */
export function authInterceptor(verify: TokenVerifier, callers: Callers, open: ReadonlySet<string>): Interceptor {
  return (next) => async (req) => {
    if (open.has(req.service.typeName)) return next(req);
    const caller = await verify(bearerToken(req.header.get("authorization")));
    await callers.ensure(caller);
    req.contextValues.set(callerKey, caller);
    return next(req);
  };
}
