/** WriteLimits: per-agent token buckets taken in shared statements, refusals remembered locally. */
import { describe, expect, it, vi } from "vitest";
import { ResourceExhausted } from "../../src/domain/model/errors.js";
import type { AgentId, CustomerId } from "../../src/domain/model/ids.js";
import type { Identity } from "../../src/domain/model/identity.js";
import {
  WriteLimits,
  writeClasses,
  type Rate,
  type TakeTokens,
  type TokenGrant,
  type TokenRequest,
  type WriteClass,
} from "../../src/domain/write/write-limits.js";

const customer = "c0000000-0000-4000-8000-000000000001" as CustomerId;
const caller = (n: number): Identity => ({
  agentId: `a0000000-0000-4000-8000-${String(n).padStart(12, "0")}` as AgentId,
  customerId: customer,
  name: undefined,
  role: "agent",
  expiresAt: Infinity,
});
const ann = caller(1);
const bob = caller(2);

const off: Rate = { perSecond: 0, burst: 0 };
const sends: Rate = { perSecond: 2, burst: 3 };
const reactions: Rate = { perSecond: 0.5, burst: 1 };

function rates(changes: Partial<Record<WriteClass, Rate>> = {}): Record<WriteClass, Rate> {
  const all = Object.fromEntries(writeClasses.map((c) => [c, off])) as Record<WriteClass, Rate>;
  return { ...all, sends, reactions, ...changes };
}

/** A shared bucket store answering with the grants a test decides, and recording each statement. */
function bucketStore(grant: (request: TokenRequest) => TokenGrant = (r) => ({ granted: r.count, left: 5 })) {
  const statements: TokenRequest[][] = [];
  const take: TakeTokens = async (requests) => {
    statements.push([...requests]);
    await Promise.resolve();
    return requests.map(grant);
  };
  return { statements, take };
}

async function outcome(taking: Promise<void>): Promise<"ok" | ResourceExhausted | unknown> {
  return taking.then(
    () => "ok",
    (error: unknown) => error,
  );
}

describe("WriteLimits", () => {
  it("is enabled when any class has a rate, and lets unlimited classes through without a statement", async () => {
    const store = bucketStore();
    expect(new WriteLimits(rates({ sends: off, reactions: off }), store.take).enabled).toBe(false);
    const limits = new WriteLimits(rates(), store.take);
    expect(limits.enabled).toBe(true);
    await limits.take(ann, "edits");
    expect(store.statements).toEqual([]);
  });

  it("takes the tokens asked in one turn in one statement, one request per bucket with its count", async () => {
    const store = bucketStore();
    const limits = new WriteLimits(rates(), store.take);
    await Promise.all([limits.take(ann, "sends"), limits.take(bob, "sends"), limits.take(ann, "sends"), limits.take(ann, "reactions")]);
    expect(store.statements).toEqual([
      [
        { customerId: customer, agentId: ann.agentId, writeClass: "sends", rate: sends, count: 2 },
        { customerId: customer, agentId: bob.agentId, writeClass: "sends", rate: sends, count: 1 },
        { customerId: customer, agentId: ann.agentId, writeClass: "reactions", rate: reactions, count: 1 },
      ],
    ]);
  });

  it("refuses the takes beyond the grant, saying when a token will be back, and refuses locally until then", async () => {
    let time = 1_000;
    const store = bucketStore((r) => ({ granted: Math.min(r.count, 1), left: 0.25 }));
    const limits = new WriteLimits(rates(), store.take, () => time);
    const [first, second] = await Promise.all([outcome(limits.take(ann, "sends")), outcome(limits.take(ann, "sends"))]);
    expect(first).toBe("ok");
    // (1 - 0.25) tokens at 2 per second: 375 ms.
    expect(second).toBeInstanceOf(ResourceExhausted);
    expect(second).toMatchObject({ message: "too many messages; retry in 375 ms", retryAfterMs: 375 });

    time += 374;
    expect(await outcome(limits.take(ann, "sends"))).toMatchObject({ message: "too many messages; retry in 1 ms", retryAfterMs: 1 });
    expect(store.statements).toHaveLength(1);
    // Another agent, or another class, is not refused by ann's refusal.
    expect(await outcome(limits.take(bob, "sends"))).toBe("ok");
    time += 1;
    expect(await outcome(limits.take(ann, "sends"))).toBe("ok");
    expect(store.statements).toHaveLength(3);
  });

  it("waits at least 1 ms after a refusal, and reads a missing grant as nothing granted", async () => {
    const store = bucketStore((r) => ({ granted: 0, left: r.agentId === ann.agentId ? 3 : 0 }));
    const limits = new WriteLimits(rates(), store.take, () => 0);
    expect(await outcome(limits.take(ann, "sends"))).toMatchObject({ retryAfterMs: 1 });
    const short = new WriteLimits(
      rates(),
      async () => [],
      () => 0,
    );
    expect(await outcome(short.take(bob, "reactions"))).toMatchObject({
      message: "too many reaction changes; retry in 2000 ms",
      retryAfterMs: 2000,
    });
  });

  it("fails every take of a statement that fails, and takes again after", async () => {
    let fail = true;
    const store = bucketStore();
    const failing: TakeTokens = async (requests) => {
      if (fail) throw new Error("database down");
      return store.take(requests);
    };
    const limits = new WriteLimits(rates(), failing);
    const outcomes = await Promise.all([outcome(limits.take(ann, "sends")), outcome(limits.take(bob, "reactions"))]);
    expect(outcomes.map((o) => (o instanceof Error ? o.message : o))).toEqual(["database down", "database down"]);
    fail = false;
    expect(await outcome(limits.take(ann, "sends"))).toBe("ok");
  });

  it("takes what arrives while a statement is out in the next statement, together", async () => {
    let release = () => {};
    const statements: TokenRequest[][] = [];
    const take: TakeTokens = async (requests) => {
      statements.push([...requests]);
      if (statements.length === 1) await new Promise<void>((resolve) => (release = resolve));
      return requests.map((r) => ({ granted: r.count, left: 1 }));
    };
    const limits = new WriteLimits(rates(), take);
    const first = limits.take(ann, "sends");
    await vi.waitFor(() => expect(statements).toHaveLength(1));
    const later = [limits.take(ann, "sends"), limits.take(bob, "sends"), limits.take(bob, "sends")];
    await Promise.resolve();
    expect(statements).toHaveLength(1);
    release();
    await Promise.all([first, ...later]);
    expect(statements.map((s) => s.map((r) => [r.agentId, r.count]))).toEqual([
      [[ann.agentId, 1]],
      [
        [ann.agentId, 1],
        [bob.agentId, 2],
      ],
    ]);
  });

  it("puts at most 500 buckets in a statement", async () => {
    const store = bucketStore();
    const limits = new WriteLimits(rates(), store.take);
    await Promise.all(Array.from({ length: 501 }, (_, i) => limits.take(caller(i + 1), "sends")));
    expect(store.statements.map((s) => s.length)).toEqual([500, 1]);
  });

  it("names each class of write in its refusal", async () => {
    const all = Object.fromEntries(writeClasses.map((c) => [c, { perSecond: 1, burst: 1 }])) as Record<WriteClass, Rate>;
    const limits = new WriteLimits(
      all,
      async (requests) => requests.map(() => ({ granted: 0, left: 0 })),
      () => 0,
    );
    const messages: string[] = [];
    for (const c of writeClasses) {
      const refused = await outcome(limits.take(ann, c));
      messages.push(refused instanceof Error ? refused.message : String(refused));
    }
    expect(messages).toEqual([
      "too many messages; retry in 1000 ms",
      "too many new talks; retry in 1000 ms",
      "too many participant changes; retry in 1000 ms",
      "too many reaction changes; retry in 1000 ms",
      "too many edits; retry in 1000 ms",
      "too many deletes; retry in 1000 ms",
      "too many closes and reopens; retry in 1000 ms",
      "too many agent directory changes; retry in 1000 ms",
    ]);
  });
});
