/**
 * Opaque keyset page tokens: the position of the last item of a page, as base64url JSON.
 * Clients only pass them back; a token that does not decode is InvalidArgument.
 */
import { InvalidArgument } from "./errors.js";

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
  if (
    !Array.isArray(position) ||
    position.length !== shape.length ||
    !position.every((item, i) => typeof item === shape[i] && (typeof item !== "number" || Number.isSafeInteger(item)))
  ) {
    throw new InvalidArgument(field, "is not a page token of this list");
  }
  return position as { [K in keyof T]: T[K] extends "string" ? string : number };
}
