/**
 * Protobuf strings to UTF-8 with a fast path for short ASCII text. protobuf-es encodes every
 * string field through TextEncoder, a call into C++ that costs about as much for a 36-character
 * id as for a page of text; an answer carries a handful of ids, so that call was a visible share
 * of a send's CPU. ASCII is its own UTF-8: short ASCII strings are copied in JS, anything else
 * (longer text, any non-ASCII character, lone surrogates) goes to the encoder as before.
 */
import { configureTextEncoding, getTextEncoding } from "@bufbuild/protobuf/wire";

/** Longer strings are left to TextEncoder, whose per-call cost is paid back by its per-byte speed. */
const shortText = 256;

/** UTF-8 of `text`, by `slow` unless it is short ASCII. Exported for its unit test. */
export function encodeUtf8(text: string, slow: (text: string) => Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> {
  const length = text.length;
  if (length > shortText) return slow(text);
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    const code = text.charCodeAt(i);
    if (code > 0x7f) return slow(text);
    bytes[i] = code;
  }
  return bytes;
}

let installed = false;

/** Makes every protobuf encoding in this process use encodeUtf8 (decoding is unchanged). */
export function useFastProtobufUtf8(): void {
  if (installed) return;
  installed = true;
  const standard = getTextEncoding();
  configureTextEncoding({
    encodeUtf8: (text) => encodeUtf8(text, standard.encodeUtf8),
    decodeUtf8: standard.decodeUtf8,
    checkUtf8: standard.checkUtf8,
  });
}
