import { Code, ConnectError, createContextKey, type HandlerContext } from "@connectrpc/connect";
import type { Identity } from "../domain/model/identity.js";

/** The verified caller, set by the auth interceptor. */
export const callerKey = createContextKey<Identity | undefined>(undefined, { description: "the verified caller" });

/** The caller of a request; every RPC runs behind the auth interceptor, so it is always set. */
export function callerOf(context: HandlerContext): Identity {
  const caller = context.values.get(callerKey);
  if (caller === undefined) throw new ConnectError("no caller identity", Code.Unauthenticated);
  return caller;
}
