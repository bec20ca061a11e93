import { describe, expect, it } from "vitest";
import type { AgentId } from "../../src/domain/model/ids.js";
import { pairKey } from "../../src/domain/model/pair-key.js";

const a = "a0000000-0000-4000-8000-00000000000a" as AgentId;
const b = "b0000000-0000-4000-8000-00000000000b" as AgentId;

describe("pairKey", () => {
  it("is the same whichever order the two agents come in, smaller id first", () => {
    expect(pairKey(a, b)).toBe(`${a}:${b}`);
    expect(pairKey(b, a)).toBe(`${a}:${b}`);
  });

  it("tells different pairs apart", () => {
    const c = "c0000000-0000-4000-8000-00000000000c" as AgentId;
    expect(pairKey(a, c)).not.toBe(pairKey(a, b));
    expect(pairKey(a, a)).toBe(`${a}:${a}`);
  });
});
