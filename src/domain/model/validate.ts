/**
 * Edge validation: raw request values in, checked domain values out, or InvalidArgument
 * naming the field.
 */
import { InvalidArgument } from "./errors.js";
import { isUuid } from "./ids.js";
import { limits } from "./limits.js";
import type { Media } from "./model.js";

/** A required UUID field, branded as the id type it names. */
export function requireId<T extends string>(field: string, value: string): T {
  if (value === "") throw new InvalidArgument(field, "is required");
  if (!isUuid(value)) throw new InvalidArgument(field, `must be a UUID, got "${preview(value)}"`);
  return value.toLowerCase() as T;
}

/** An optional UUID field: empty means absent. */
export function optionalId<T extends string>(field: string, value: string): T | null {
  return value === "" ? null : requireId<T>(field, value);
}

/** One of a fixed set of words. */
export function oneOf<const T extends string>(field: string, value: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new InvalidArgument(field, `must be one of ${allowed.map((a) => `"${a}"`).join(", ")}, got "${preview(value)}"`);
}

/** A string of at most `max` characters (code points), without NUL characters. */
export function text(field: string, value: string, max: number): string {
  if (value.includes("\u0000")) throw new InvalidArgument(field, "must not contain NUL characters");
  // Counting code points only when the UTF-16 length could exceed the limit keeps this O(1) mostly.
  if (value.length > max && [...value].length > max) {
    throw new InvalidArgument(field, `must be at most ${max} characters`);
  }
  return value;
}

/** C0 and C1 control characters and DEL; NUL among them, which Postgres text and jsonb refuse. */
const controlCharacter = /\p{Cc}/u;

const mimeType = /^[a-z0-9][a-z0-9!#$&^_.+-]*\/[a-z0-9][a-z0-9!#$&^_.+-]*$/i;

/** Message attachments: at most ten, each a MIME type, an http(s) URL and a name. */
export function medias(field: string, values: readonly Media[]): Media[] {
  if (values.length > limits.maxMediasPerMessage) {
    throw new InvalidArgument(field, `at most ${limits.maxMediasPerMessage} medias per message`);
  }
  return values.map((media, i) => {
    const at = `${field}[${i}]`;
    if (media.type.length > limits.maxMediaTypeLength || !mimeType.test(media.type)) {
      throw new InvalidArgument(`${at}.type`, 'must be a MIME type such as "application/pdf"');
    }
    if (media.url.length > limits.maxMediaUrlLength) {
      throw new InvalidArgument(`${at}.url`, `must be at most ${limits.maxMediaUrlLength} characters`);
    }
    // The URL parser drops or escapes some of these, but the URL is stored as given.
    if (controlCharacter.test(media.url)) throw new InvalidArgument(`${at}.url`, "must not contain control characters");
    let url: URL;
    try {
      url = new URL(media.url);
    } catch {
      throw new InvalidArgument(`${at}.url`, "must be an absolute http or https URL");
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw new InvalidArgument(`${at}.url`, "must be an absolute http or https URL");
    }
    if (media.name.trim() === "") throw new InvalidArgument(`${at}.name`, "is required");
    if (controlCharacter.test(media.name)) throw new InvalidArgument(`${at}.name`, "must not contain control characters");
    return { type: media.type, url: media.url, name: text(`${at}.name`, media.name, limits.maxMediaNameLength) };
  });
}

/** An emoji: a short name or the character(s), no whitespace or control characters. */
export function emoji(field: string, value: string): string {
  if (value === "") throw new InvalidArgument(field, "is required");
  if (value.length > limits.maxEmojiLength) throw new InvalidArgument(field, `must be at most ${limits.maxEmojiLength} characters`);
  if (/[\s\p{Cc}]/u.test(value)) throw new InvalidArgument(field, "must not contain whitespace or control characters");
  return value;
}

/** A page size: 0 means the default; larger than the maximum is clamped to it. */
export function pageSize(field: string, value: number): number {
  if (value < 0) throw new InvalidArgument(field, "must not be negative");
  if (value === 0) return limits.defaultPageSize;
  return Math.min(value, limits.maxPageSize);
}

function preview(value: string): string {
  return value.length > 40 ? `${value.slice(0, 40)}...` : value;
}
