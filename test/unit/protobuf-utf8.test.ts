/** The protobuf UTF-8 encoder's fast path: the same bytes as TextEncoder, for every kind of text. */
import { describe, expect, it } from "vitest";
import { encodeUtf8 } from "../../src/http/protobuf-utf8.js";

const encoder = new TextEncoder();
const standard = (text: string) => encoder.encode(text);

describe("encodeUtf8", () => {
  it.each([
    ["empty", ""],
    ["an id", "01900000-0000-7000-8000-000000000001"],
    ["ASCII with controls and DEL", "tab\there\u0000nul\u007f"],
    ["Latin-1 past ASCII", "caf\u00e9"],
    ["CJK and emoji", "\u4f60\u597d \ud83d\udc4b"],
    ["a lone surrogate", "x\ud800y"],
    ["long ASCII", "a".repeat(300)],
    ["long text ending in non-ASCII", `${"a".repeat(255)}\u00e9`],
  ])("%s", (_name, text) => {
    expect([...encodeUtf8(text, standard)]).toEqual([...encoder.encode(text)]);
  });

  it("copies short ASCII itself and leaves the rest to the standard encoder", () => {
    const asked: string[] = [];
    const counting = (text: string) => {
      asked.push(text);
      return encoder.encode(text);
    };
    encodeUtf8("01900000-0000-7000-8000-000000000001", counting);
    encodeUtf8("caf\u00e9", counting);
    encodeUtf8("a".repeat(257), counting);
    expect(asked).toEqual(["caf\u00e9", "a".repeat(257)]);
  });
});
