/**
 * Where a request's bearer token comes from, one rule for every HTTP/1.1 and HTTP/2 edge (RPC,
 * REST and WebSocket): the Authorization header when the request has one, the `?token=` query
 * parameter (as the spec's examples send it) otherwise. A header that is present but malformed
 * is not passed over for the query: the request is refused as its header says, so one request
 * never carries two credentials that count.
 */
import { bearerOf } from "../auth/bearer.js";

export type BearerToken =
  /** `token` is undefined when the header is not `Bearer <token>`. */
  | { readonly from: "header"; readonly token: string | undefined }
  /** `token` is undefined when the parameter cannot be a token (a JWT is base64url and dots). */
  | { readonly from: "query"; readonly token: string | undefined }
  | { readonly from: "none" };

const tokenChars = /^[A-Za-z0-9_.-]+$/;

/** The token of a request, from its Authorization header value and its URL (path and query). */
export function bearerToken(authorization: string | readonly string[] | undefined, url: string | undefined): BearerToken {
  if (authorization !== undefined) {
    return { from: "header", token: typeof authorization === "string" ? bearerOf(authorization) : undefined };
  }
  // Most requests carry no query token: skip parsing their query.
  if (url === undefined || !url.includes("token=")) return { from: "none" };
  const queryStart = url.indexOf("?");
  if (queryStart < 0) return { from: "none" };
  const token = new URLSearchParams(url.slice(queryStart + 1)).get("token");
  if (token === null || token === "") return { from: "none" };
  return { from: "query", token: tokenChars.test(token) ? token : undefined };
}
