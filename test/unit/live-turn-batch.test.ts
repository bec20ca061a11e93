import { describe, expect, it } from "vitest";
import { TurnBatch } from "../../src/live/turn-batch.js";
import { settle } from "./live-fakes.js";

/** A batch whose reads are recorded and answer each key with its double. */
function doubling(maxKeys?: number) {
  const reads: number[][] = [];
  const batch = new TurnBatch<number, number>(async (keys) => {
    reads.push([...keys]);
    return keys.map((key) => key * 2);
  }, maxKeys);
  return { batch, reads };
}

describe("TurnBatch", () => {
  it("reads the keys asked for in one turn with one read, and answers each caller its own value", async () => {
    const { batch, reads } = doubling();
    const answers = Promise.all([batch.get(1), batch.get(2), batch.get(3)]);
    expect(reads).toEqual([]);
    expect(await answers).toEqual([2, 4, 6]);
    expect(reads).toEqual([[1, 2, 3]]);
  });

  it("reads again for the keys of a later turn, and only those", async () => {
    const { batch, reads } = doubling();
    expect(await Promise.all([batch.get(1), batch.get(2)])).toEqual([2, 4]);
    expect(await batch.get(5)).toBe(10);
    await settle();
    expect(await Promise.all([batch.get(7), batch.get(8)])).toEqual([14, 16]);
    expect(reads).toEqual([[1, 2], [5], [7, 8]]);
  });

  it("splits a turn's keys into reads of at most maxKeys, each caller still answered its own value", async () => {
    const { batch, reads } = doubling(2);
    expect(await Promise.all([1, 2, 3, 4, 5].map((key) => batch.get(key)))).toEqual([2, 4, 6, 8, 10]);
    expect(reads).toEqual([[1, 2], [3, 4], [5]]);
    // A turn that fills its reads exactly makes no empty read after them.
    expect(await Promise.all([6, 7].map((key) => batch.get(key)))).toEqual([12, 14]);
    expect(reads.slice(3)).toEqual([[6, 7]]);
  });

  it("reads at most 1,000 keys at once by default", async () => {
    const { batch, reads } = doubling();
    const keys = Array.from({ length: 1_001 }, (_, i) => i);
    expect(await Promise.all(keys.map((key) => batch.get(key)))).toEqual(keys.map((key) => key * 2));
    expect(reads.map((read) => read.length)).toEqual([1_000, 1]);
    expect(reads[1]).toEqual([1_000]);
  });

  it("rejects every caller of a failed read with its error, and only those", async () => {
    const failure = new Error("store down");
    const reads: string[][] = [];
    const batch = new TurnBatch<string, string>(async (keys) => {
      reads.push([...keys]);
      if (keys.includes("bad")) throw failure;
      return keys.map((key) => key.toUpperCase());
    }, 2);
    const results = await Promise.allSettled(["a", "bad", "c"].map((key) => batch.get(key)));
    expect(results).toEqual([
      { status: "rejected", reason: failure },
      { status: "rejected", reason: failure },
      { status: "fulfilled", value: "C" },
    ]);
    // The batch goes on after a failed read.
    expect(await batch.get("d")).toBe("D");
    expect(reads).toEqual([["a", "bad"], ["c"], ["d"]]);
  });
});
