/** StreamQuota: open streams per agent, against a maximum, each with a way to end it. */
import { describe, expect, it } from "vitest";
import { PermissionDenied, ResourceExhausted, type DomainError } from "../../src/domain/model/errors.js";
import type { AgentId, CustomerId } from "../../src/domain/model/ids.js";
import { StreamQuota, type StreamHolder } from "../../src/domain/stream-quota.js";

const c1 = "c0000000-0000-4000-8000-000000000001" as CustomerId;
const c2 = "c0000000-0000-4000-8000-000000000002" as CustomerId;
const ann = "a0000000-0000-4000-8000-00000000000a" as AgentId;
const bob = "a0000000-0000-4000-8000-00000000000b" as AgentId;
const cid = "a0000000-0000-4000-8000-00000000000c" as AgentId;

function holder(agentId: AgentId, customerId: CustomerId = c1): StreamHolder & { ended: DomainError[] } {
  const ended: DomainError[] = [];
  return { agentId, customerId, ended, end: (reason) => ended.push(reason) };
}

describe("StreamQuota", () => {
  it("opens up to the maximum per agent, then refuses until one is released", () => {
    const quota = new StreamQuota(2);
    const release = quota.acquire(holder(ann));
    quota.acquire(holder(ann));
    quota.acquire(holder(bob));
    expect(() => quota.acquire(holder(ann))).toThrow(ResourceExhausted);
    expect(() => quota.acquire(holder(ann))).toThrow("at most 2 open streams per agent; close one first");
    expect([quota.open(ann), quota.open(bob), quota.total]).toEqual([2, 1, 3]);
    release();
    expect([quota.open(ann), quota.total]).toEqual([1, 2]);
    quota.acquire(holder(ann));
    expect(quota.open(ann)).toBe(2);
  });

  it("counts a release once however often it is called", () => {
    const quota = new StreamQuota(5);
    const release = quota.acquire(holder(ann));
    quota.acquire(holder(ann));
    release();
    release();
    expect([quota.open(ann), quota.total]).toEqual([1, 1]);
  });

  it("has no maximum when it is 0", () => {
    const quota = new StreamQuota(0);
    for (let i = 0; i < 50; i++) quota.acquire(holder(ann));
    expect(quota.open(ann)).toBe(50);
  });

  it("lists the agents with open streams by customer, and forgets an agent whose streams all closed", () => {
    const quota = new StreamQuota(3);
    const releases = [quota.acquire(holder(ann)), quota.acquire(holder(ann))];
    quota.acquire(holder(bob));
    quota.acquire(holder(cid, c2));
    expect(quota.agentsByCustomer()).toEqual(
      new Map([
        [c1, [ann, bob]],
        [c2, [cid]],
      ]),
    );
    for (const release of releases) release();
    expect(quota.open(ann)).toBe(0);
    expect(quota.agentsByCustomer()).toEqual(
      new Map([
        [c1, [bob]],
        [c2, [cid]],
      ]),
    );
  });

  it("ends every open stream of an agent with the reason, and no one else's", () => {
    const quota = new StreamQuota(3);
    const a1 = holder(ann);
    const a2 = holder(ann);
    const b1 = holder(bob);
    for (const h of [a1, a2, b1]) quota.acquire(h);
    const reason = new PermissionDenied("revoked");
    quota.endAgent(ann, reason);
    expect([a1.ended, a2.ended, b1.ended]).toEqual([[reason], [reason], []]);
    quota.endAgent(cid, reason);
  });

  it("ends streams that release themselves as they end", () => {
    const quota = new StreamQuota(3);
    const releases: (() => void)[] = [];
    const selfReleasing = (): StreamHolder => ({ agentId: ann, customerId: c1, end: () => releases.shift()?.() });
    releases.push(quota.acquire(selfReleasing()), quota.acquire(selfReleasing()));
    quota.endAgent(ann, new PermissionDenied("revoked"));
    expect([quota.open(ann), quota.total]).toEqual([0, 0]);
    expect(quota.agentsByCustomer().size).toBe(0);
  });
});
