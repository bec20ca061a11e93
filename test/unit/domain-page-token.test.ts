/** Page tokens: positions round-trip on their own list; anything else is InvalidArgument. */
import { describe, expect, it } from "vitest";
import { InvalidArgument } from "../../src/domain/model/errors.js";
import { decodePageToken, encodePageToken, type PageList } from "../../src/domain/model/page-token.js";

const list: PageList = ["messages", "customer-1", "talk-a", ""];
/** A token of `list` holding any position, even one the service would never write. */
const token = (position: unknown[]) => encodePageToken(list, position as (string | number)[]);
const raw = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
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
  it("round-trips a position as small base64url JSON", () => {
    const encoded = encodePageToken(list, ["b", 42]);
    expect(encoded).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(encoded.length).toBeLessThan(40);
    expect(decodePageToken("page_token", encoded, list, ["string", "number"])).toEqual(["b", 42]);
  });

  it("does not spell out the ids of its list", () => {
    const decoded = Buffer.from(encodePageToken(list, [7]), "base64url").toString("utf8");
    for (const part of list) if (part !== "") expect(decoded).not.toContain(part);
  });

  it("reads the empty token as the first page", () => {
    expect(decodePageToken("page_token", "", list, ["number"])).toBeNull();
  });

  it("takes the edges of the number range", () => {
    expect(decodePageToken("t", token([0]), list, ["number"])).toEqual([0]);
    expect(decodePageToken("t", token([maxTime]), list, ["number"])).toEqual([maxTime]);
    expect(decodePageToken("t", token([""]), list, ["string"])).toEqual([""]);
  });

  it.each<[string, PageList]>([
    ["another talk's list", ["messages", "customer-1", "talk-b", ""]],
    ["a thread's list", ["messages", "customer-1", "talk-a", "message-1"]],
    ["another customer's list of the same talk", ["messages", "customer-2", "talk-a", ""]],
    ["another kind of list", ["talks", "customer-1", "talk-a", ""]],
    ["a list whose scope parts split differently", ["messages", "customer-1", "talk-a\u0000", ""]],
  ])("refuses a token of %s", (_what, other) => {
    const error = refusal(() => decodePageToken("page_token", encodePageToken(other, [5]), list, ["number"]));
    expect(error.message).toBe("page_token: is not a page token of this list");
  });

  it.each([
    ["not base64 JSON", "%%%"],
    ["JSON that is not an array", raw({ a: 1 })],
    ["a position without its list", raw([1, 2])],
    ["a shorter position", token([1])],
    ["a longer position", token([1, 2, 3])],
    ["a string where a number belongs", token(["1", 2])],
    ["a negative number", token([-1, 2])],
    ["a fraction", token([1.5, 2])],
    ["a number past year 9999", token([maxTime + 1, 2])],
    ["an unsafe integer", token([2 ** 53, 2])],
    ["null", token([null, 2])],
  ])("refuses %s", (_what, bad) => {
    const error = refusal(() => decodePageToken("page_token", bad, list, ["number", "number"]));
    expect(error.message).toBe("page_token: is not a page token of this list");
  });

  it("refuses a string with a NUL character", () => {
    expect(() => decodePageToken("t", token(["a\u0000b"]), list, ["string"])).toThrow("t: is not a page token of this list");
    expect(() => decodePageToken("t", token([5]), list, ["string"])).toThrow(InvalidArgument);
  });
});
