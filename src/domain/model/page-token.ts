/**
 * Opaque keyset page tokens: the position of the last item of a page, bound to the list it
 * came from, as base64url JSON. Clients only pass them back; a token that does not decode, or
 * that another list made, is InvalidArgument.
 */
import { createHash } from "node:crypto";
import { InvalidArgument } from "./errors.js";

/**
 * What selects a list's items: its name, then its scope (customer, caller, talk, thread).
 * A token made for one list is refused by every other.
 */
export type PageList = readonly [name: string, ...scope: string[]];

/**
 * The largest number a position holds. Numbers are seqs or times in milliseconds since the
 * epoch: never negative, and no time the database can compare is after the year 9999.
 */
const maxPositionNumber = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/**
 * A short digest of the list, so a token stays small and does not spell out the ids it is
 * bound to; 72 bits make an accidental match between two lists out of reach. Tokens are not
 * secret (they only hold positions in lists the caller may read), so no key is needed.
 */
function listTag(list: PageList): string {
  return createHash("sha256").update(JSON.stringify(list)).digest().subarray(0, 9).toString("base64url");
}

/** Whether an element can be part of a position this service made (and the database takes). */
function inRange(item: unknown): boolean {
  if (typeof item === "number") return Number.isSafeInteger(item) && item >= 0 && item <= maxPositionNumber;
  // Text columns refuse NUL: such a string was never a position, and must not reach a query.
  return typeof item === "string" && !item.includes("\u0000");
}

export function encodePageToken(list: PageList, position: readonly (string | number)[]): string {
  return Buffer.from(JSON.stringify([listTag(list), ...position])).toString("base64url");
}

/**
 * Decodes a token of `list` into its position, checking each element's type; null for the
 * first page.
 */
export function decodePageToken<const T extends readonly ("string" | "number")[]>(
  field: string,
  token: string,
  list: PageList,
  shape: T,
): { [K in keyof T]: T[K] extends "string" ? string : number } | null {
  if (token === "") return null;
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    throw new InvalidArgument(field, "is not a page token of this list");
  }
  if (!Array.isArray(decoded) || decoded[0] !== listTag(list)) throw new InvalidArgument(field, "is not a page token of this list");
  const position: unknown[] = decoded.slice(1);
  if (position.length !== shape.length || !position.every((item, i) => typeof item === shape[i] && inRange(item))) {
    throw new InvalidArgument(field, "is not a page token of this list");
  }
  return position as { [K in keyof T]: T[K] extends "string" ? string : number };
}
