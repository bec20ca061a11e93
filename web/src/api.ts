/**
 * Talkhub's client package (clients/ts) on the page's own origin: typed clients of the three
 * services over the Connect protocol, and WatchTalk / WatchEvents that resume on their own.
 */
import { Code, ConnectError, createTalkhubClient, type TalkhubClient } from "../../clients/ts/src/index.js";

export type Api = TalkhubClient;

export function createApi(token: string, baseUrl = location.origin): Api {
  return createTalkhubClient({ baseUrl, token });
}

/** A short, human message for a failed call. */
export function describeError(error: unknown): string {
  const e = ConnectError.from(error);
  if (e.code === Code.Unauthenticated) return "The service did not accept the token (signed out?).";
  return e.rawMessage || Code[e.code] || "request failed";
}

export { Code, ConnectError };
