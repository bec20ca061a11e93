/**
 * Opaque keyset page tokens: the position of the last item of a page, as base64url JSON.
 * Clients only pass them back; a token that does not decode is InvalidArgument.
 */
import { InvalidArgument } from "./errors.js";

/**
 * The largest number a position holds. Numbers are seqs or times in milliseconds since the
 * epoch: never negative, and no time the database can compare is after the year 9999.
 */
const maxPositionNumber = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/** Whether an element can be part of a position this service made (and the database takes). */
function inRange(item: unknown): boolean {
  if (typeof item === "number") return Number.isSafeInteger(item) && item >= 0 && item <= maxPositionNumber;
  // Text columns refuse NUL: such a string was never a position, and must not reach a query.
  return typeof item === "string" && !item.includes("\u0000");
}

export function encodePageToken(position: readonly (string | number)[]): string {
  return Buffer.from(JSON.stringify(position)).toString("base64url");
}

/**
 * Decodes a token into its position, checking each element's type; null for the first page.
 */
export function decodePageToken<const T extends readonly ("string" | "number")[]>(
  field: string,
  token: string,
  shape: T,
): { [K in keyof T]: T[K] extends "string" ? string : number } | null {
  if (token === "") return null;
  let position: unknown;
  try {
    position = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    throw new InvalidArgument(field, "is not a page token of this list");
  }
  if (!Array.isArray(position) || position.length !== shape.length || !position.every((item, i) => typeof item === shape[i] && inRange(item))) {
    throw new InvalidArgument(field, "is not a page token of this list");
  }
  return position as { [K in keyof T]: T[K] extends "string" ? string : number };
}
