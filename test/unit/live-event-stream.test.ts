import { afterEach, describe, expect, it, vi } from "vitest";
import { Canceled, OutOfRange, ResourceExhausted, Unavailable } from "../../src/domain/model/errors.js";
import type { TalkId } from "../../src/domain/model/ids.js";
import { EventStream, type StreamItem, type StreamOutlet } from "../../src/live/event-stream.js";
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

/** An outlet that records what it is given, as "A3" or "hb", and answers `room` (false: full until resume). */
function recorder() {
  const got: string[] = [];
  const state = { room: true };
  const outlet: StreamOutlet = {
    event: (e) => {
      got.push(label({ kind: "event", event: e }));
      return state.room;
    },
    heartbeat: () => {
      got.push("hb");
      return state.room;
    },
  };
  return { got, outlet, state };
}

describe("EventStream: pushing to an outlet", () => {
  afterEach(() => vi.useRealTimers());

  it("hands live events to a writable outlet as they come", async () => {
    const { stream, commit } = setup();
    const { got, outlet } = recorder();
    await stream.follow(customerId, talkA, 0);
    void stream.start(outlet);
    commit(talkA, 1);
    commit(talkA, 2);
    await settle();
    expect(got).toEqual(["A1", "A2"]);
  });

  it("holds events while the outlet is full and hands them over, in order, on resume", async () => {
    const { stream, commit } = setup();
    const { got, outlet, state } = recorder();
    await stream.follow(customerId, talkA, 0);
    void stream.start(outlet);
    state.room = false;
    commit(talkA, 1);
    commit(talkA, 2);
    commit(talkA, 3);
    await settle();
    expect(got).toEqual(["A1"]);
    state.room = true;
    stream.resume();
    await settle();
    expect(got).toEqual(["A1", "A2", "A3"]);
    commit(talkA, 4);
    await settle();
    expect(got).toEqual(["A1", "A2", "A3", "A4"]);
  });

  it("counts the events held for a full outlet towards the cut-off", async () => {
    const { stream, commit, failures, feeds } = setup({ maxQueued: 2 });
    const { got, outlet, state } = recorder();
    await stream.follow(customerId, talkA, 0);
    const ended = stream.start(outlet);
    state.room = false;
    commit(talkA, 1);
    commit(talkA, 2);
    commit(talkA, 3);
    await settle();
    expect(failures).toEqual([]);
    commit(talkA, 4);
    await settle();
    expect(failures[0]).toBeInstanceOf(ResourceExhausted);
    expect(await rejection(ended)).toBe(failures[0]);
    expect(feeds.listeners).toBe(0);
    stream.resume();
    await settle();
    expect(got).toEqual(["A1"]);
  });

  it("gives nothing before the first resume when started blocked", async () => {
    const { stream, log, commit } = setup();
    const { got, outlet } = recorder();
    log.fill(talkA, 2);
    await stream.follow(customerId, talkA, 0);
    void stream.start(outlet, true);
    commit(talkA, 3);
    await settle();
    expect(got).toEqual([]);
    expect(log.reads).toEqual([]);
    stream.resume();
    await settle();
    expect(got).toEqual(["A1", "A2", "A3"]);
  });

  it("replays one event per resume into an outlet that is full after each", async () => {
    const { stream, log, commit } = setup();
    const { got, outlet, state } = recorder();
    log.fill(talkA, 3);
    await stream.follow(customerId, talkA, 0);
    state.room = false;
    void stream.start(outlet);
    await settle();
    expect(got).toEqual(["A1"]);
    commit(talkA, 4);
    stream.resume();
    await settle();
    expect(got).toEqual(["A1", "A2"]);
    state.room = true;
    stream.resume();
    await settle();
    expect(got).toEqual(["A1", "A2", "A3", "A4"]);
  });

  it("stops a replay waiting for a full outlet when aborted, reading no further", async () => {
    const { stream, log, controller } = setup();
    const { got, outlet, state } = recorder();
    log.fill(talkA, 300);
    await stream.follow(customerId, talkA, 0);
    state.room = false;
    const ended = stream.start(outlet);
    await settle();
    controller.abort(new Unavailable("bye"));
    await settle();
    expect(await rejection(ended)).toBeInstanceOf(Unavailable);
    stream.resume();
    await settle();
    expect(got).toEqual(["A1"]);
    expect(log.reads).toHaveLength(1);
  });

  it("fails with the log's error when a replay read fails, and detaches", async () => {
    const { stream, log, failures, feeds } = setup();
    const { got, outlet } = recorder();
    log.fill(talkA, 3);
    await stream.follow(customerId, talkA, 0);
    const error = new Unavailable("db down");
    log.failNext = error;
    expect(await rejection(stream.start(outlet))).toBe(error);
    expect(failures).toEqual([error]);
    expect(feeds.listeners).toBe(0);
    expect(got).toEqual([]);
  });

  it("sends a heartbeat only for an interval in which nothing went out", async () => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    const { stream, commit } = setup({ heartbeatMs: 1_000 });
    const { got, outlet } = recorder();
    await stream.follow(customerId, talkA, 0);
    void stream.start(outlet);
    vi.advanceTimersByTime(999);
    expect(got).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(got).toEqual(["hb"]);
    commit(talkA, 1);
    await settle();
    vi.advanceTimersByTime(1_000);
    expect(got).toEqual(["hb", "A1"]);
    vi.advanceTimersByTime(1_000);
    expect(got).toEqual(["hb", "A1", "hb"]);
  });

  it("sends no heartbeat into a full outlet, and holds events after a heartbeat that filled it", async () => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    const { stream, commit } = setup({ heartbeatMs: 1_000 });
    const { got, outlet, state } = recorder();
    await stream.follow(customerId, talkA, 0);
    void stream.start(outlet);
    state.room = false;
    vi.advanceTimersByTime(1_000);
    vi.advanceTimersByTime(1_000);
    commit(talkA, 1);
    await settle();
    expect(got).toEqual(["hb"]);
    state.room = true;
    stream.resume();
    await settle();
    expect(got).toEqual(["hb", "A1"]);
  });

  it("stops its heartbeats when it ends, and starts none when it has ended already", async () => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    const { stream, controller } = setup({ heartbeatMs: 1_000 });
    const { got, outlet } = recorder();
    // The feeds' gap check is a timer too.
    const feedTimers = vi.getTimerCount();
    void stream.start(outlet);
    expect(vi.getTimerCount()).toBe(feedTimers + 1);
    controller.abort();
    expect(vi.getTimerCount()).toBe(feedTimers);
    vi.advanceTimersByTime(5_000);
    expect(got).toEqual([]);
    const { stream: ended, controller: endedController } = setup({ heartbeatMs: 1_000 });
    const timers = vi.getTimerCount();
    endedController.abort();
    expect(await rejection(ended.start(outlet))).toBeInstanceOf(Canceled);
    expect(vi.getTimerCount()).toBe(timers);
  });
});

describe("EventStream: replay and live events meeting", () => {
  it("replays at once for a talk followed after the start", async () => {
    const { stream, log } = setup();
    const { got, outlet } = recorder();
    log.fill(talkA, 2);
    void stream.start(outlet);
    await stream.follow(customerId, talkA, 0);
    await settle();
    expect(got).toEqual(["A1", "A2"]);
  });

  it("keeps a live event of one talk behind another talk's replay in progress", async () => {
    const { stream, log, commit } = setup();
    const { got, outlet } = recorder();
    log.fill(talkA, 2);
    await stream.follow(customerId, talkA, 0);
    await stream.follow(customerId, talkB, 0);
    let open: () => void = () => {};
    log.gate = new Promise<void>((resolve) => (open = resolve));
    void stream.start(outlet);
    await settle();
    commit(talkB, 1);
    await settle();
    expect(got).toEqual([]);
    open();
    await settle();
    expect(got).toEqual(["A1", "A2", "B1"]);
  });

  it("gives a live event that came before its replay after the replay, waiting for a full outlet", async () => {
    const { stream, log, bus } = setup();
    const got: string[] = [];
    // Full after A2: the live A3 has to wait for a resume.
    const outlet: StreamOutlet = { event: (e) => got.push(label({ kind: "event", event: e })) !== 2, heartbeat: () => true };
    log.fill(talkA, 2);
    void stream.start(outlet);
    const following = stream.follow(customerId, talkA, 0);
    // Published as the stream joins the feed: it reaches the stream before the replay is queued.
    bus.publish([event(talkA, 3)]);
    await following;
    await settle();
    expect(got).toEqual(["A1", "A2"]);
    stream.resume();
    await settle();
    expect(got).toEqual(["A1", "A2", "A3"]);
  });

  it("drops a live event waiting for a full outlet when its talk is unfollowed, or the stream aborted", async () => {
    for (const leave of ["unfollow", "abort"] as const) {
      const { stream, log, bus, controller } = setup();
      const got: string[] = [];
      const outlet: StreamOutlet = { event: (e) => got.push(label({ kind: "event", event: e })) !== 2, heartbeat: () => true };
      log.fill(talkA, 2);
      void stream.start(outlet).catch(() => undefined);
      const following = stream.follow(customerId, talkA, 0);
      bus.publish([event(talkA, 3)]);
      await following;
      await settle();
      if (leave === "unfollow") stream.unfollow(talkA);
      else controller.abort();
      stream.resume();
      await settle();
      expect(got).toEqual(["A1", "A2"]);
    }
  });

  it("holds at most maxQueued events while the pump waits for a full outlet", async () => {
    const { stream, commit, failures } = setup({ maxQueued: 2 });
    const { got, outlet, state } = recorder();
    await stream.follow(customerId, talkA, 0);
    // Events before the start wait in the queue.
    commit(talkA, 1);
    commit(talkA, 2);
    await settle();
    state.room = false;
    void stream.start(outlet).catch(() => undefined);
    await settle();
    expect(got).toEqual(["A1"]);
    commit(talkA, 3);
    await settle();
    expect(failures).toEqual([]);
    commit(talkA, 4);
    await settle();
    expect(failures[0]).toBeInstanceOf(ResourceExhausted);
  });

  it("gives nothing of a talk unfollowed while its replay page was read, and minds no hole in it", async () => {
    const { stream, log, commit, failures } = setup();
    const { got, outlet } = recorder();
    log.fill(talkA, 2);
    await stream.follow(customerId, talkA, 0);
    await stream.follow(customerId, talkB, 0);
    let open: () => void = () => {};
    log.gate = new Promise<void>((resolve) => (open = resolve));
    void stream.start(outlet);
    await settle();
    stream.unfollow(talkA);
    // Retention dropped the talk's events meanwhile: the page comes back empty.
    log.trim(talkA, 2);
    open();
    await settle();
    commit(talkB, 1);
    await settle();
    expect(got).toEqual(["B1"]);
    expect(failures).toEqual([]);
  });

  it("takes a replay read that fails after the stream was aborted for no failure", async () => {
    const { stream, log, controller, failures } = setup();
    const { outlet } = recorder();
    log.fill(talkA, 2);
    await stream.follow(customerId, talkA, 0);
    let open: () => void = () => {};
    log.gate = new Promise<void>((resolve) => (open = resolve));
    log.failNext = new Error("db down");
    const ended = stream.start(outlet);
    await settle();
    const reason = new Unavailable("shutting down");
    controller.abort(reason);
    open();
    await settle();
    expect(failures).toEqual([]);
    expect(await rejection(ended)).toBe(reason);
  });
});
