import { describe, expect, it } from "vitest";
import { InvalidArgument } from "../../src/domain/model/errors.js";
import { FeedCursor, commitMarginMs, maxCursorLength } from "../../src/live/feed-cursor.js";
import type { TalkId } from "../../src/domain/model/ids.js";
import { talkA, talkB } from "./live-fakes.js";

const now = new Date("2026-05-01T12:00:00Z");
const t = now.getTime();
const token = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
const contents = (cursor: FeedCursor) =>
  JSON.parse(Buffer.from(cursor.encode(), "base64url").toString("utf8")) as { w: number; s: Record<string, number> };
const talk = (i: number) => `0190a3b4-0000-7000-8000-${i.toString(16).padStart(12, "0")}` as TalkId;

function refusal(value: string): string {
  try {
    FeedCursor.decode("cursor", value, now);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidArgument);
    return (error as InvalidArgument).message;
  }
  throw new Error("not refused");
}

describe("FeedCursor.startingAt", () => {
  it("sets the watermark a commit margin before now and names the talks active since", () => {
    const cursor = FeedCursor.startingAt(now, [
      { talkId: talkA, lastSeq: 4, tmActivity: new Date(t - commitMarginMs) },
      { talkId: talkB, lastSeq: 9, tmActivity: new Date(t - commitMarginMs - 1) },
    ]);
    expect(cursor.watermarkTime).toEqual(new Date(t - 60_000));
    expect(cursor.seqOf(talkA)).toBe(4);
    expect(cursor.seqOf(talkB)).toBeUndefined();
    expect(contents(cursor)).toEqual({ w: t - 60_000, s: { [talkA]: 4 } });
  });
});

describe("FeedCursor.decode", () => {
  it("reads back what encode wrote", () => {
    const cursor = FeedCursor.decode("cursor", token({ w: t - 5, s: { [talkA]: 3, [talkB]: 0 } }), now);
    expect(cursor.watermarkTime).toEqual(new Date(t - 5));
    expect(cursor.seqOf(talkA)).toBe(3);
    expect(cursor.seqOf(talkB)).toBe(0);
    expect(FeedCursor.decode("cursor", cursor.encode(), now).seqOf(talkA)).toBe(3);
    expect(FeedCursor.decode("cursor", token({ w: 0, s: {} }), now).watermarkTime.getTime()).toBe(0);
  });

  it("takes a cursor of the largest length and refuses a longer one", () => {
    const exact = `{"w":0,"s":{}${" ".repeat((maxCursorLength * 3) / 4 - 14)}}`;
    const encoded = Buffer.from(exact).toString("base64url");
    expect(encoded).toHaveLength(maxCursorLength);
    expect(FeedCursor.decode("cursor", encoded, now).watermarkTime.getTime()).toBe(0);
    expect(refusal(`${encoded}A`)).toBe(`cursor: must be at most ${maxCursorLength} characters`);
  });

  it("accepts a watermark up to the clock skew ahead of now, and no further", () => {
    expect(FeedCursor.decode("cursor", token({ w: t + 60_000, s: {} }), now).watermarkTime.getTime()).toBe(t + 60_000);
    expect(refusal(token({ w: t + 60_001, s: {} }))).toBe("cursor: is ahead of the present: not a cursor of this feed");
  });

  it.each([
    ["not base64 JSON", "!!!"],
    ["JSON that is not an object", token(5)],
    ["null", token(null)],
    ["an array", token([1, 2])],
    ["no w", token({ s: {} })],
    ["no s", token({ w: 1 })],
    ["a string w", token({ w: "1", s: {} })],
    ["a fractional w", token({ w: 1.5, s: {} })],
    ["a negative w", token({ w: -1, s: {} })],
    ["an unsafe w", token({ w: 2 ** 53, s: {} })],
    ["a null s", token({ w: 1, s: null })],
    ["an array s", token({ w: 1, s: [] })],
    ["a string s", token({ w: 1, s: "x" })],
    ["a talk that is not a UUID", token({ w: 1, s: { talk: 1 } })],
    ["a __proto__ talk", `${Buffer.from(`{"w":1,"s":{"__proto__":1}}`).toString("base64url")}`],
    ["a string seq", token({ w: 1, s: { [talkA]: "1" } })],
    ["a negative seq", token({ w: 1, s: { [talkA]: -1 } })],
    ["a fractional seq", token({ w: 1, s: { [talkA]: 0.5 } })],
    ["an unsafe seq", token({ w: 1, s: { [talkA]: 2 ** 53 } })],
    ["an inherited w", `${Buffer.from(`{"__proto__":{"w":1},"s":{}}`).toString("base64url")}`],
  ])("refuses %s", (_, value) => {
    expect(refusal(value)).toBe("cursor: is not a cursor of this feed");
  });

  it("names the field in the error", () => {
    expect(() => FeedCursor.decode("resume", "!!!", now)).toThrow("resume: is not a cursor of this feed");
  });
});

describe("FeedCursor.advance", () => {
  it("records the last delivered seq of a talk", () => {
    const cursor = FeedCursor.startingAt(now, []);
    cursor.advance(talkA, 1, now, now);
    cursor.advance(talkA, 2, now, now);
    expect(cursor.seqOf(talkA)).toBe(2);
    expect(contents(cursor).s).toEqual({ [talkA]: 2 });
  });

  it("keeps up to 256 talks, then folds those older than the margin into the watermark", () => {
    const start = new Date(t - 10 * 60_000);
    const cursor = FeedCursor.startingAt(start, []);
    const old = new Date(t - 2 * 60_000);
    for (let i = 1; i <= 256; i++) cursor.advance(talk(i), i, old, now);
    expect(Object.keys(contents(cursor).s)).toHaveLength(256);
    expect(cursor.watermarkTime.getTime()).toBe(start.getTime() - commitMarginMs);
    const recent = new Date(t - commitMarginMs);
    cursor.advance(talk(257), 257, recent, now);
    expect(cursor.watermarkTime.getTime()).toBe(t - commitMarginMs);
    expect(contents(cursor).s).toEqual({ [talk(257)]: 257 });
  });

  it("never moves the watermark back when folding", () => {
    const cursor = FeedCursor.startingAt(now, []);
    const earlier = new Date(t - 10 * 60_000);
    for (let i = 1; i <= 257; i++) cursor.advance(talk(i), i, now, earlier);
    expect(cursor.watermarkTime.getTime()).toBe(t - commitMarginMs);
    expect(Object.keys(contents(cursor).s)).toHaveLength(257);
  });

  it("folds a decoded cursor's talks, which date from its watermark", () => {
    const s = Object.fromEntries(Array.from({ length: 256 }, (_, i) => [talk(i + 1), i + 1]));
    const cursor = FeedCursor.decode("cursor", token({ w: t - 5 * 60_000, s }), now);
    cursor.advance(talk(1000), 1, now, now);
    expect(contents(cursor)).toEqual({ w: t - commitMarginMs, s: { [talk(1000)]: 1 } });
  });
});
