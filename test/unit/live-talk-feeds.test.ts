import { afterEach, describe, expect, it, vi } from "vitest";
import type { TalkEvent } from "../../src/domain/model/events.js";
import type { CustomerId, TalkId } from "../../src/domain/model/ids.js";
import type { EventBus, EventListener } from "../../src/bus/bus.js";
import { LocalBus } from "../../src/bus/local-bus.js";
import { TalkFeeds } from "../../src/live/talk-feeds.js";
import { MemoryLog, customerId, event, settle, talkA, talkB } from "./live-fakes.js";

/** A local bus that counts its talk subscriptions. */
class CountingBus extends LocalBus {
  subscribed = 0;
  unsubscribed = 0;
  override subscribeTalk(c: CustomerId, t: TalkId, listener: EventListener) {
    this.subscribed++;
    const off = super.subscribeTalk(c, t, listener);
    return () => {
      this.unsubscribed++;
      off();
    };
  }
}

const open: TalkFeeds[] = [];
afterEach(() => {
  for (const feeds of open.splice(0)) feeds.close();
  vi.useRealTimers();
});

function setup(gapCheckMs = 3_600_000) {
  const bus = new CountingBus();
  const log = new MemoryLog();
  const errors: unknown[] = [];
  const feeds = new TalkFeeds(bus, log, { gapCheckMs, onError: (e) => errors.push(e) });
  open.push(feeds);
  /** Publishes events as committed: in the log, then on the bus. */
  const commit = (talkId: TalkId, to: number, from = to) => bus.publish(log.fill(talkId, to, from));
  return { bus, log, errors, feeds, commit };
}

const seqs = (events: TalkEvent[]) => events.map((e) => e.seq);

describe("TalkFeeds.attach", () => {
  it("starts at the talk's head and then gives every new event once, in order", async () => {
    const { log, feeds, commit, bus } = setup();
    log.fill(talkA, 3);
    const got: TalkEvent[] = [];
    const { head } = await feeds.attach(customerId, talkA, (e) => got.push(e));
    expect(head).toBe(3);
    commit(talkA, 4);
    commit(talkA, 5);
    bus.publish([event(talkA, 5), event(talkA, 2)]);
    await settle();
    expect(seqs(got)).toEqual([4, 5]);
  });

  it("starts at 0 for a talk without events", async () => {
    const { feeds } = setup();
    expect((await feeds.attach(customerId, talkA, () => undefined)).head).toBe(0);
  });

  it("fills a gap from the log before an event that arrives past it", async () => {
    const { log, feeds, bus } = setup();
    const got: TalkEvent[] = [];
    await feeds.attach(customerId, talkA, (e) => got.push(e));
    log.fill(talkA, 4);
    bus.publish([event(talkA, 4)]);
    await settle();
    expect(seqs(got)).toEqual([1, 2, 3, 4]);
    expect(log.reads).toEqual([{ talkId: talkA, afterSeq: 0, limit: 3 }]);
  });

  it("reads a long gap in pages of 500", async () => {
    const { log, feeds, bus } = setup();
    const got: TalkEvent[] = [];
    await feeds.attach(customerId, talkA, (e) => got.push(e));
    log.fill(talkA, 1201);
    bus.publish([event(talkA, 1201)]);
    await vi.waitFor(() => expect(got).toHaveLength(1201), { interval: 1 });
    expect(seqs(got)).toEqual(Array.from({ length: 1201 }, (_, i) => i + 1));
    expect(log.reads.map((r) => [r.afterSeq, r.limit])).toEqual([
      [0, 500],
      [500, 500],
      [1000, 200],
    ]);
  });

  it("goes past a hole in the log instead of waiting for it forever", async () => {
    const { log, feeds, bus } = setup();
    const got: TalkEvent[] = [];
    await feeds.attach(customerId, talkA, (e) => got.push(e));
    // Retention dropped 2 (and the watcher's stream will say so): 3 and 4 still come.
    log.events.set(talkA, [event(talkA, 1), event(talkA, 3), event(talkA, 4)]);
    bus.publish([event(talkA, 4)]);
    await settle();
    expect(seqs(got)).toEqual([1, 3, 4]);
  });

  it("stops filling when the log has nothing more", async () => {
    const { log, feeds, bus } = setup();
    const got: TalkEvent[] = [];
    await feeds.attach(customerId, talkA, (e) => got.push(e));
    bus.publish([event(talkA, 3)]);
    await settle();
    expect(got).toEqual([]);
    expect(log.reads).toEqual([{ talkId: talkA, afterSeq: 0, limit: 2 }]);
    log.fill(talkA, 1);
    bus.publish([event(talkA, 1)]);
    await settle();
    expect(seqs(got)).toEqual([1]);
  });

  it("shares one feed and one subscription among a talk's listeners", async () => {
    const { bus, feeds, commit } = setup();
    const first: TalkEvent[] = [];
    const second: TalkEvent[] = [];
    const a = await feeds.attach(customerId, talkA, (e) => first.push(e));
    commit(talkA, 1);
    const b = await feeds.attach(customerId, talkA, (e) => second.push(e));
    expect(b.head).toBe(1);
    await feeds.attach(customerId, talkB, () => undefined);
    expect(bus.subscribed).toBe(2);
    expect(feeds.size).toBe(2);
    expect(feeds.listeners).toBe(3);
    commit(talkA, 2);
    await settle();
    expect(seqs(first)).toEqual([1, 2]);
    expect(seqs(second)).toEqual([2]);
    a.detach();
    expect(bus.unsubscribed).toBe(0);
    expect(feeds.listeners).toBe(2);
    commit(talkA, 3);
    await settle();
    expect(seqs(first)).toEqual([1, 2]);
    b.detach();
    expect(bus.unsubscribed).toBe(1);
    expect(feeds.size).toBe(1);
  });

  it("lets a stale detach leave a talk's newer feed alone", async () => {
    const { bus, feeds, commit } = setup();
    const old = await feeds.attach(customerId, talkA, () => undefined);
    old.detach();
    const got: TalkEvent[] = [];
    await feeds.attach(customerId, talkA, (e) => got.push(e));
    old.detach();
    expect(bus.unsubscribed).toBe(1);
    expect(feeds.size).toBe(1);
    commit(talkA, 1);
    await settle();
    expect(seqs(got)).toEqual([1]);
  });

  it("gives an event to every listener there when it was dispatched", async () => {
    const { feeds, commit } = setup();
    const got: string[] = [];
    let second: { detach: () => void } | undefined;
    await feeds.attach(customerId, talkA, (e) => {
      got.push(`first${e.seq}`);
      second?.detach();
    });
    second = await feeds.attach(customerId, talkA, (e) => got.push(`second${e.seq}`));
    commit(talkA, 1);
    commit(talkA, 2);
    await settle();
    expect(got).toEqual(["first1", "second1", "first2"]);
  });

  it("reports a failing read and goes on with the next event", async () => {
    const { log, feeds, bus, errors } = setup();
    const got: TalkEvent[] = [];
    await feeds.attach(customerId, talkA, (e) => got.push(e));
    log.fill(talkA, 3);
    log.failNext = new Error("db down");
    bus.publish([event(talkA, 3)]);
    await settle();
    expect(errors).toEqual([new Error("db down")]);
    expect(got).toEqual([]);
    log.fill(talkA, 4, 4);
    bus.publish([event(talkA, 4)]);
    await settle();
    expect(seqs(got)).toEqual([1, 2, 3, 4]);
  });

  it("reports a failure to read the head", async () => {
    const { log, feeds, errors } = setup();
    log.failNext = new Error("no head");
    expect((await feeds.attach(customerId, talkA, () => undefined)).head).toBe(0);
    expect(errors).toEqual([new Error("no head")]);
  });

  it("subscribes before it reads the head, so an event between the two is not lost", async () => {
    const bus = new LocalBus();
    const log = new MemoryLog();
    const publishing: EventBus = Object.assign(Object.create(bus) as LocalBus, {
      subscribeTalk: (c: CustomerId, t: TalkId, l: EventListener) => {
        const off = bus.subscribeTalk(c, t, l);
        // Committed after the subscription, before the head is read: in the head.
        bus.publish(log.fill(talkA, 1));
        return off;
      },
    });
    const feeds = new TalkFeeds(publishing, log, { gapCheckMs: 3_600_000, onError: () => undefined });
    open.push(feeds);
    const got: TalkEvent[] = [];
    const { head } = await feeds.attach(customerId, talkA, (e) => got.push(e));
    expect(head).toBe(1);
    bus.publish(log.fill(talkA, 2, 2));
    await settle();
    expect(seqs(got)).toEqual([2]);
  });
});

describe("TalkFeeds.sweep", () => {
  it("pulls what the log has past a feed's head (a lost last publish)", async () => {
    const { log, feeds } = setup();
    const got: TalkEvent[] = [];
    await feeds.attach(customerId, talkA, (e) => got.push(e));
    await feeds.attach(customerId, talkB, () => undefined);
    log.fill(talkA, 2);
    await feeds.sweep();
    await settle();
    expect(seqs(got)).toEqual([1, 2]);
    expect(log.headCalls.at(-1)).toEqual([talkA, talkB]);
    const reads = log.reads.length;
    await feeds.sweep();
    await settle();
    expect(log.reads.length).toBe(reads);
  });

  it("does not read heads without feeds", async () => {
    const { log, feeds } = setup();
    await feeds.sweep();
    expect(log.headCalls).toEqual([]);
  });

  it("runs one sweep at a time", async () => {
    const { log, feeds } = setup();
    await feeds.attach(customerId, talkA, () => undefined);
    let open: () => void = () => undefined;
    log.gate = new Promise<void>((resolve) => (open = resolve));
    const first = feeds.sweep();
    await feeds.sweep();
    expect(log.headCalls).toHaveLength(2);
    open();
    log.gate = undefined;
    await first;
    await feeds.sweep();
    expect(log.headCalls).toHaveLength(3);
  });

  it("reports a failure and sweeps again next time", async () => {
    const { log, feeds, errors } = setup();
    const got: TalkEvent[] = [];
    await feeds.attach(customerId, talkA, (e) => got.push(e));
    log.fill(talkA, 1);
    log.failNext = new Error("heads failed");
    await feeds.sweep();
    expect(errors).toEqual([new Error("heads failed")]);
    await feeds.sweep();
    await settle();
    expect(seqs(got)).toEqual([1]);
  });

  it("skips a feed detached while the heads were read", async () => {
    const { log, feeds, errors } = setup();
    const { detach } = await feeds.attach(customerId, talkA, () => undefined);
    log.fill(talkA, 2);
    let open: () => void = () => undefined;
    log.gate = new Promise<void>((resolve) => (open = resolve));
    const sweeping = feeds.sweep();
    await settle();
    detach();
    open();
    log.gate = undefined;
    await sweeping;
    expect(errors).toEqual([]);
  });

  it("runs every gapCheckMs", async () => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    const { log, feeds } = setup(1_000);
    await feeds.attach(customerId, talkA, () => undefined);
    const before = log.headCalls.length;
    vi.advanceTimersByTime(999);
    expect(log.headCalls.length).toBe(before);
    vi.advanceTimersByTime(1);
    expect(log.headCalls.length).toBe(before + 1);
    feeds.close();
    vi.advanceTimersByTime(5_000);
    expect(log.headCalls.length).toBe(before + 1);
  });
});

describe("TalkFeeds.close", () => {
  it("unsubscribes every feed", async () => {
    const { bus, feeds, commit } = setup();
    const got: TalkEvent[] = [];
    await feeds.attach(customerId, talkA, (e) => got.push(e));
    await feeds.attach(customerId, talkB, () => undefined);
    feeds.close();
    expect(bus.unsubscribed).toBe(2);
    expect(feeds.size).toBe(0);
    expect(feeds.listeners).toBe(0);
    commit(talkA, 1);
    await settle();
    expect(got).toEqual([]);
  });
});

describe("TalkFeeds: its gap check", () => {
  it("does not keep the process alive", () => {
    const setInterval = vi.spyOn(globalThis, "setInterval");
    setup();
    const timer = setInterval.mock.results.at(-1)?.value as NodeJS.Timeout;
    setInterval.mockRestore();
    expect(timer.hasRef()).toBe(false);
  });
});
