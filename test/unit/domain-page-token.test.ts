/** Page tokens: positions round-trip; anything this service did not make is InvalidArgument. */
import { describe, expect, it } from "vitest";
import { InvalidArgument } from "../../src/domain/errors.js";
import { decodePageToken, encodePageToken } from "../../src/domain/page-token.js";

const token = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
const maxTime = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

function refusal(run: () => unknown): InvalidArgument {
  try {
    run();
  } catch (error) {
    if (error instanceof InvalidArgument) return error;
    throw error;
  }
  throw new Error("not refused");
}

describe("page tokens", () => {
  it("round-trips a position as base64url JSON", () => {
    const encoded = encodePageToken(["b", 42]);
    expect(encoded).toBe(token(["b", 42]));
    expect(encoded).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodePageToken("page_token", encoded, ["string", "number"])).toEqual(["b", 42]);
  });

  it("reads the empty token as the first page", () => {
    expect(decodePageToken("page_token", "", ["number"])).toBeNull();
  });

  it("takes the edges of the number range", () => {
    expect(decodePageToken("t", token([0]), ["number"])).toEqual([0]);
    expect(decodePageToken("t", token([maxTime]), ["number"])).toEqual([maxTime]);
    expect(decodePageToken("t", token([""]), ["string"])).toEqual([""]);
  });

  it.each([
    ["not base64 JSON", "%%%"],
    ["JSON that is not an array", token({ a: 1 })],
    ["a shorter position", token([1])],
    ["a longer position", token([1, 2, 3])],
    ["a string where a number belongs", token(["1", 2])],
    ["a negative number", token([-1, 2])],
    ["a fraction", token([1.5, 2])],
    ["a number past year 9999", token([maxTime + 1, 2])],
    ["an unsafe integer", token([2 ** 53, 2])],
    ["null", token([null, 2])],
  ])("refuses %s", (_what, bad) => {
    const error = refusal(() => decodePageToken("page_token", bad, ["number", "number"]));
    expect(error.message).toBe("page_token: is not a page token of this list");
  });

  it("refuses a string with a NUL character", () => {
    expect(() => decodePageToken("t", token(["a\u0000b"]), ["string"])).toThrow("t: is not a page token of this list");
    expect(() => decodePageToken("t", token([5]), ["string"])).toThrow(InvalidArgument);
  });
});
