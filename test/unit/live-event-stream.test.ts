import { afterEach, describe, expect, it, vi } from "vitest";
import { Canceled, OutOfRange, ResourceExhausted, Unavailable } from "../../src/domain/model/errors.js";
import type { TalkId } from "../../src/domain/model/ids.js";
import { EventStream, type StreamItem } from "../../src/live/event-stream.js";
import { LocalBus } from "../../src/bus/local-bus.js";
import { TalkFeeds } from "../../src/live/talk-feeds.js";
import { MemoryLog, customerId, event, settle, talkA, talkB } from "./live-fakes.js";

const open: TalkFeeds[] = [];
afterEach(() => {
  for (const feeds of open.splice(0)) feeds.close();
});

function setup(options: { maxQueued?: number; heartbeatMs?: number } = {}) {
  const bus = new LocalBus();
  const log = new MemoryLog();
  const feeds = new TalkFeeds(bus, log, { gapCheckMs: 3_600_000, onError: () => undefined });
  open.push(feeds);
  const controller = new AbortController();
  const failures: unknown[] = [];
  const stream = new EventStream(feeds, log, {
    maxQueued: options.maxQueued ?? 100,
    heartbeatMs: options.heartbeatMs ?? 60_000,
    signal: controller.signal,
    onFailure: (e) => failures.push(e),
  });
  const commit = (talkId: TalkId, to: number, from = to) => bus.publish(log.fill(talkId, to, from));
  const items = stream.items();
  /** The next `n` items, as "A3" (talk A, seq 3) or "hb". */
  const take = async (n: number) => {
    const out: string[] = [];
    for (let i = 0; i < n; i++) {
      const next = await items.next();
      if (next.done === true) throw new Error("the stream ended");
      out.push(label(next.value));
    }
    return out;
  };
  return { bus, log, feeds, controller, failures, stream, items, take, commit };
}

const label = (item: StreamItem) => (item.kind === "heartbeat" ? "hb" : `${item.event.chatId === talkA ? "A" : "B"}${item.event.seq}`);

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error("not rejected");
    },
    (error: unknown) => error,
  );
}

describe("EventStream: replay, then live", () => {
  it("replays the log after the starting seq, then gives live events, without gaps or duplicates", async () => {
    const { stream, take, commit, log, bus } = setup();
    log.fill(talkA, 3);
    await stream.follow(customerId, talkA, 1);
    expect(stream.delivered(talkA)).toBe(1);
    commit(talkA, 4);
    bus.publish([event(talkA, 4), event(talkA, 3)]);
    commit(talkA, 5);
    expect(await take(4)).toEqual(["A2", "A3", "A4", "A5"]);
    expect(stream.delivered(talkA)).toBe(5);
  });

  it("replays nothing when the start is the head", async () => {
    const { stream, take, commit, log } = setup();
    log.fill(talkA, 3);
    await stream.follow(customerId, talkA, 3);
    commit(talkA, 4);
    expect(await take(1)).toEqual(["A4"]);
    expect(log.reads).toEqual([]);
  });

  it("replays in pages of 200", async () => {
    const { stream, take, log } = setup();
    log.fill(talkA, 450);
    await stream.follow(customerId, talkA, 0);
    const got = await take(450);
    expect(got.at(-1)).toBe("A450");
    expect(log.reads.map((r) => [r.afterSeq, r.limit])).toEqual([
      [0, 200],
      [200, 200],
      [400, 50],
    ]);
  });

  it("fills a gap before a live event from the log", async () => {
    const { stream, take, log, bus } = setup();
    await stream.follow(customerId, talkA, 0);
    log.fill(talkA, 3);
    bus.publish([event(talkA, 3)]);
    expect(await take(3)).toEqual(["A1", "A2", "A3"]);
  });

  it("follows several talks, each in its own order", async () => {
    const { stream, take, commit } = setup();
    await stream.follow(customerId, talkA, 0);
    await stream.follow(customerId, talkB, 0);
    commit(talkA, 1);
    commit(talkB, 1);
    commit(talkA, 2);
    expect(await take(3)).toEqual(["A1", "B1", "A2"]);
  });

  it("follows a talk once", async () => {
    const { stream, feeds, log } = setup();
    log.fill(talkA, 2);
    await stream.follow(customerId, talkA, 0);
    await stream.follow(customerId, talkA, 1);
    expect(feeds.listeners).toBe(1);
    expect(stream.delivered(talkA)).toBe(0);
  });

  it("answers OUT_OF_RANGE when the log no longer has what is to be replayed", async () => {
    const { stream, items, log } = setup();
    log.fill(talkA, 5);
    log.trim(talkA, 2);
    await stream.follow(customerId, talkA, 1);
    const error = await rejection(items.next());
    expect(error).toBeInstanceOf(OutOfRange);
    expect((error as Error).message).toBe(`events after seq 1 of talk ${talkA} are no longer retained; resync with ListMessages`);
  });

  it("answers OUT_OF_RANGE when the log has nothing at all to replay", async () => {
    const { stream, items, log } = setup();
    log.fill(talkA, 3);
    await stream.follow(customerId, talkA, 0);
    log.trim(talkA, 3);
    expect(await rejection(items.next())).toBeInstanceOf(OutOfRange);
  });

  it("gives a heartbeat after heartbeatMs without an event", async () => {
    const { take, stream, commit } = setup({ heartbeatMs: 5 });
    await stream.follow(customerId, talkA, 0);
    expect(await take(1)).toEqual(["hb"]);
    const next = take(1);
    commit(talkA, 1);
    expect(await next).toEqual(["A1"]);
  });
});

describe("EventStream: leaving a talk", () => {
  it("stops giving a talk's events once unfollowed, queued ones included", async () => {
    const { stream, take, commit } = setup({ heartbeatMs: 5 });
    await stream.follow(customerId, talkA, 0);
    await stream.follow(customerId, talkB, 0);
    commit(talkA, 1);
    stream.unfollow(talkA);
    commit(talkA, 2);
    commit(talkB, 1);
    expect(await take(1)).toEqual(["B1"]);
    expect(stream.delivered(talkA)).toBeUndefined();
  });

  it("stops a replay when the talk is unfollowed in the middle", async () => {
    const { stream, take, log } = setup({ heartbeatMs: 5 });
    log.fill(talkA, 5);
    await stream.follow(customerId, talkA, 0);
    expect(await take(2)).toEqual(["A1", "A2"]);
    stream.unfollow(talkA);
    expect(await take(1)).toEqual(["hb"]);
  });

  it("detaches at once from a feed attached after an unfollow raced it", async () => {
    const { stream, feeds } = setup();
    const following = stream.follow(customerId, talkA, 0);
    stream.unfollow(talkA);
    await following;
    expect(feeds.listeners).toBe(0);
  });

  it("detaches from the old feed when a talk is followed anew", async () => {
    const { stream, feeds, take, commit } = setup();
    const first = stream.follow(customerId, talkA, 0);
    stream.unfollow(talkA);
    await stream.follow(customerId, talkA, 0);
    await first;
    expect(feeds.listeners).toBe(1);
    commit(talkA, 1);
    expect(await take(1)).toEqual(["A1"]);
  });
});

describe("EventStream: edges the mutation run found", () => {
  it("unfollows a talk it does not follow without complaint", () => {
    const { stream } = setup();
    expect(() => stream.unfollow(talkB)).not.toThrow();
  });

  it("drops an event queued before its talk was unfollowed", async () => {
    const { stream, take, commit } = setup();
    await stream.follow(customerId, talkA, 0);
    await stream.follow(customerId, talkB, 0);
    commit(talkA, 1);
    await settle();
    stream.unfollow(talkA);
    commit(talkB, 1);
    expect(await take(1)).toEqual(["B1"]);
  });

  it("ends with OUT_OF_RANGE when its feed goes past a hole in the log", async () => {
    const { stream, items, log, bus } = setup();
    await stream.follow(customerId, talkA, 0);
    log.events.set(talkA, [event(talkA, 1), event(talkA, 3)]);
    bus.publish([event(talkA, 3)]);
    expect(await items.next()).toEqual({ done: false, value: { kind: "event", event: event(talkA, 1) } });
    expect(await rejection(items.next())).toBeInstanceOf(OutOfRange);
  });

  it("skips live events up to a start past the talk's head", async () => {
    const { stream, take, log, commit } = setup();
    log.fill(talkA, 3);
    await stream.follow(customerId, talkA, 5);
    commit(talkA, 4);
    commit(talkA, 5);
    commit(talkA, 6);
    expect(await take(1)).toEqual(["A6"]);
  });

  it("gives replayed events as events", async () => {
    const { stream, items, log } = setup();
    log.fill(talkA, 1);
    await stream.follow(customerId, talkA, 0);
    expect(await items.next()).toEqual({ done: false, value: { kind: "event", event: event(talkA, 1) } });
  });

  it("counts queued events after a replay marker was taken", async () => {
    const { stream, take, log, failures, commit } = setup({ maxQueued: 1 });
    log.fill(talkA, 2);
    await stream.follow(customerId, talkA, 0);
    expect(await take(2)).toEqual(["A1", "A2"]);
    commit(talkA, 3);
    commit(talkA, 4);
    await settle();
    expect(failures).toHaveLength(1);
  });
});

describe("EventStream: ends", () => {
  it("ends with the signal's domain error, and detaches without waiting for a pull", async () => {
    const { stream, items, feeds, controller } = setup();
    await stream.follow(customerId, talkA, 0);
    const pending = items.next();
    const reason = new Unavailable("shutting down");
    controller.abort(reason);
    expect(feeds.listeners).toBe(0);
    expect(await rejection(pending)).toBe(reason);
  });

  it("ends as cancelled when the signal aborts for another reason", async () => {
    const { stream, items, controller } = setup();
    await stream.follow(customerId, talkA, 0);
    controller.abort();
    const error = await rejection(items.next());
    expect(error).toBeInstanceOf(Canceled);
    expect((error as Error).message).toBe("the stream was cancelled");
  });

  it("a stream made on a signal already aborted ends as soon as it starts, with the signal's reason", async () => {
    const log = new MemoryLog();
    const feeds = new TalkFeeds(new LocalBus(), log, { gapCheckMs: 3_600_000, onError: () => undefined });
    open.push(feeds);
    const reason = new Unavailable("shutting down");
    const stream = new EventStream(feeds, log, { maxQueued: 10, heartbeatMs: 60_000, signal: AbortSignal.abort(reason) });
    expect(await rejection(stream.start({ event: () => true, heartbeat: () => true }))).toBe(reason);
  });

  it("follows nothing once aborted", async () => {
    const { stream, feeds, controller } = setup();
    controller.abort();
    await stream.follow(customerId, talkA, 0);
    expect(feeds.listeners).toBe(0);
    expect(stream.delivered(talkA)).toBeUndefined();
  });

  it("stops a replay when aborted between pages", async () => {
    const { stream, take, items, log, controller } = setup();
    log.fill(talkA, 300);
    await stream.follow(customerId, talkA, 0);
    await take(199);
    controller.abort();
    expect(await rejection(items.next())).toBeInstanceOf(Canceled);
    expect(log.reads).toHaveLength(1);
  });

  it("stops a replay page when aborted in its middle", async () => {
    const { stream, take, items, log, controller } = setup();
    log.fill(talkA, 10);
    await stream.follow(customerId, talkA, 0);
    await take(3);
    controller.abort(new Unavailable("bye"));
    expect(await rejection(items.next())).toBeInstanceOf(Unavailable);
  });

  it("cuts off a consumer more than maxQueued events behind, detaching at once", async () => {
    const { stream, items, feeds, failures, commit } = setup({ maxQueued: 3 });
    await stream.follow(customerId, talkA, 0);
    commit(talkA, 1);
    commit(talkA, 2);
    commit(talkA, 3);
    await settle();
    expect(failures).toEqual([]);
    commit(talkA, 4);
    await settle();
    expect(failures).toHaveLength(1);
    expect(failures[0]).toBeInstanceOf(ResourceExhausted);
    expect((failures[0] as Error).message).toBe("the stream fell more than 3 events behind; resume from the last seq received");
    expect(feeds.listeners).toBe(0);
    expect(await rejection(items.next())).toBe(failures[0]);
    await stream.follow(customerId, talkB, 0);
    expect(feeds.listeners).toBe(0);
  });

  it("counts only events not yet taken", async () => {
    const { stream, take, failures, commit } = setup({ maxQueued: 2 });
    await stream.follow(customerId, talkA, 0);
    for (let seq = 1; seq <= 6; seq += 2) {
      commit(talkA, seq);
      commit(talkA, seq + 1);
      expect(await take(2)).toEqual([`A${seq}`, `A${seq + 1}`]);
    }
    expect(failures).toEqual([]);
  });

  it("counts replay markers as no events", async () => {
    const { stream, take, log, failures, commit } = setup({ maxQueued: 1 });
    log.fill(talkA, 2);
    log.fill(talkB, 2);
    await stream.follow(customerId, talkA, 0);
    await stream.follow(customerId, talkB, 0);
    commit(talkA, 3);
    expect(await take(5)).toEqual(["A1", "A2", "B1", "B2", "A3"]);
    expect(failures).toEqual([]);
  });

  it("wakes a waiting consumer when it fails", async () => {
    const { stream, items, commit, log } = setup({ maxQueued: 0 });
    log.fill(talkA, 2);
    await stream.follow(customerId, talkA, 0);
    // The replay is held, so the live event has to wait in the queue, which holds none.
    log.gate = new Promise(() => undefined);
    const pending = items.next();
    await settle();
    commit(talkA, 3);
    expect(await rejection(pending)).toBeInstanceOf(ResourceExhausted);
  });

  it("detaches when the consumer stops", async () => {
    const { stream, items, feeds, take, commit } = setup();
    await stream.follow(customerId, talkA, 0);
    commit(talkA, 1);
    await take(1);
    await items.return(undefined);
    expect(feeds.listeners).toBe(0);
  });

  it("detaches on close", async () => {
    const { stream, feeds } = setup();
    await stream.follow(customerId, talkA, 0);
    await stream.follow(customerId, talkB, 0);
    stream.close();
    expect(feeds.listeners).toBe(0);
    expect(stream.delivered(talkA)).toBeUndefined();
  });
});

describe("EventStream: without onFailure", () => {
  it("still fails a consumer too far behind", async () => {
    const bus = new LocalBus();
    const log = new MemoryLog();
    const errors: unknown[] = [];
    const feeds = new TalkFeeds(bus, log, { gapCheckMs: 3_600_000, onError: (e) => errors.push(e) });
    open.push(feeds);
    const stream = new EventStream(feeds, log, { maxQueued: 0, heartbeatMs: 60_000, signal: new AbortController().signal });
    await stream.follow(customerId, talkA, 0);
    bus.publish(log.fill(talkA, 1));
    await vi.waitFor(() => expect(feeds.listeners).toBe(0), { interval: 1 });
    expect(await rejection(stream.items().next())).toBeInstanceOf(ResourceExhausted);
    expect(errors).toEqual([]);
  });
});
