import { describe, expect, it } from "vitest";
import type { TalkEvent } from "../../src/domain/model/events.js";
import type { AgentId } from "../../src/domain/model/ids.js";
import { LocalBus } from "../../src/bus/local-bus.js";
import { agentX, customerId, event, joined, talkA, talkB } from "./live-fakes.js";

const seqs = (events: TalkEvent[]) => events.map((e) => `${e.chatId === talkA ? "A" : "B"}${e.seq}`);

describe("LocalBus", () => {
  it("delivers a talk's events, in order, to each of its subscribers only", () => {
    const bus = new LocalBus();
    const a1: TalkEvent[] = [];
    const a2: TalkEvent[] = [];
    const b: TalkEvent[] = [];
    bus.subscribeTalk(customerId, talkA, (e) => a1.push(e));
    bus.subscribeTalk(customerId, talkA, (e) => a2.push(e));
    bus.subscribeTalk(customerId, talkB, (e) => b.push(e));
    bus.publish([event(talkA, 1), event(talkB, 1), event(talkA, 2)]);
    expect(seqs(a1)).toEqual(["A1", "A2"]);
    expect(seqs(a2)).toEqual(["A1", "A2"]);
    expect(seqs(b)).toEqual(["B1"]);
  });

  it("stops delivering to an unsubscribed listener, and to it alone", () => {
    const bus = new LocalBus();
    const kept: TalkEvent[] = [];
    const dropped: TalkEvent[] = [];
    bus.subscribeTalk(customerId, talkA, (e) => kept.push(e));
    const off = bus.subscribeTalk(customerId, talkA, (e) => dropped.push(e));
    bus.publish([event(talkA, 1)]);
    off();
    off();
    bus.publish([event(talkA, 2)]);
    expect(seqs(kept)).toEqual(["A1", "A2"]);
    expect(seqs(dropped)).toEqual(["A1"]);
  });

  it("subscribes a talk again after its last listener left", () => {
    const bus = new LocalBus();
    bus.subscribeTalk(customerId, talkA, () => undefined)();
    const got: TalkEvent[] = [];
    bus.subscribeTalk(customerId, talkA, (e) => got.push(e));
    bus.publish([event(talkA, 1)]);
    expect(seqs(got)).toEqual(["A1"]);
  });

  it("gives the event to every listener subscribed when it was published, also when one leaves meanwhile", () => {
    const bus = new LocalBus();
    const got: string[] = [];
    let offSecond: () => void = () => undefined;
    bus.subscribeTalk(customerId, talkA, (e) => {
      got.push(`first${e.seq}`);
      offSecond();
    });
    offSecond = bus.subscribeTalk(customerId, talkA, (e) => got.push(`second${e.seq}`));
    bus.publish([event(talkA, 1), event(talkA, 2)]);
    expect(got).toEqual(["first1", "second1", "first2"]);
  });

  it("tells an agent of the talks it joins, and of nothing else", () => {
    const bus = new LocalBus();
    const other = "0190a3b4-0000-7000-8000-0000000000f2" as AgentId;
    const x: TalkEvent[] = [];
    const y: TalkEvent[] = [];
    bus.subscribeAgent(customerId, agentX, (e) => x.push(e));
    const offY = bus.subscribeAgent(customerId, other, (e) => y.push(e));
    bus.publish([event(talkA, 1), joined(talkA, 2, agentX), joined(talkB, 1, other)]);
    offY();
    bus.publish([joined(talkB, 2, other)]);
    expect(seqs(x)).toEqual(["A2"]);
    expect(seqs(y)).toEqual(["B1"]);
  });

  it("is always connected and closes at once", async () => {
    const bus = new LocalBus();
    expect(bus.connected).toBe(true);
    await expect(bus.close()).resolves.toBeUndefined();
  });
});
