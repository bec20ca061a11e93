import { getEventListeners } from "node:events";
import { afterEach, describe, expect, it, vi } from "vitest";
import { Canceled, NotFound, Unauthenticated, Unavailable } from "../../src/domain/model/errors.js";
import { WatchScope } from "../../src/live/watch-scope.js";

afterEach(() => vi.useRealTimers());

const reasonOf = (scope: WatchScope): unknown => scope.signal.reason;

describe("WatchScope: its sources", () => {
  it("ends with a source's domain error when it aborts", () => {
    const source = new AbortController();
    const scope = new WatchScope([new AbortController().signal, source.signal]);
    expect(scope.ended).toBe(false);
    expect(scope.signal.aborted).toBe(false);
    const reason = new Unavailable("shutting down");
    source.abort(reason);
    expect(scope.ended).toBe(true);
    expect(reasonOf(scope)).toBe(reason);
  });

  it("ends as cancelled when a source aborts for another reason", () => {
    const source = new AbortController();
    const scope = new WatchScope([source.signal]);
    source.abort(new Error("socket closed"));
    expect(reasonOf(scope)).toEqual(new Canceled("the stream was cancelled"));
    expect(reasonOf(scope)).toBeInstanceOf(Canceled);
  });

  it("is ended from the start by a source already aborted, and listens to no later source", () => {
    const later = new AbortController();
    const reason = new NotFound("talk");
    const scope = new WatchScope([AbortSignal.abort(reason), later.signal]);
    expect(scope.ended).toBe(true);
    expect(reasonOf(scope)).toBe(reason);
    expect(getEventListeners(later.signal, "abort")).toHaveLength(0);
    const cancelled = new WatchScope([AbortSignal.abort()]);
    expect(reasonOf(cancelled)).toBeInstanceOf(Canceled);
  });

  it("stops listening to its sources when it ends", () => {
    const a = new AbortController();
    const b = new AbortController();
    const scope = new WatchScope([a.signal, b.signal]);
    expect(getEventListeners(a.signal, "abort")).toHaveLength(1);
    scope.end(new Canceled("done"));
    expect(getEventListeners(a.signal, "abort")).toHaveLength(0);
    expect(getEventListeners(b.signal, "abort")).toHaveLength(0);
  });
});

describe("WatchScope: what it holds", () => {
  it("releases what it holds once, last taken first, and keeps the first reason", () => {
    const scope = new WatchScope([]);
    const released: string[] = [];
    scope.hold(() => released.push("slot"));
    scope.hold(() => released.push("feeds"));
    const first = new Unauthenticated("expired");
    scope.end(first);
    scope.end(new Canceled("again"));
    expect(released).toEqual(["feeds", "slot"]);
    expect(reasonOf(scope)).toBe(first);
  });

  it("releases at once what it is given after it ended", () => {
    const scope = new WatchScope([]);
    scope.end(new Canceled("done"));
    const release = vi.fn();
    scope.hold(release);
    expect(release).toHaveBeenCalledTimes(1);
  });

  it("throws its reason once ended, and nothing before", () => {
    const scope = new WatchScope([]);
    expect(() => scope.throwIfEnded()).not.toThrow();
    const reason = new NotFound("talk");
    scope.end(reason);
    expect(() => scope.throwIfEnded()).toThrow(reason);
  });
});

describe("WatchScope.race", () => {
  it("gives the work's result when it comes first, and stops listening", async () => {
    const scope = new WatchScope([]);
    await expect(scope.race(Promise.resolve(7))).resolves.toBe(7);
    await expect(scope.race(Promise.reject(new Error("failed")))).rejects.toThrow("failed");
    expect(getEventListeners(scope.signal, "abort")).toHaveLength(0);
  });

  it("rejects with the scope's reason as soon as it ends", async () => {
    const scope = new WatchScope([]);
    const raced = scope.race(new Promise<never>(() => undefined));
    const reason = new Unauthenticated("expired");
    scope.end(reason);
    await expect(raced).rejects.toBe(reason);
    expect(getEventListeners(scope.signal, "abort")).toHaveLength(0);
  });

  it("throws at once when the scope has ended", async () => {
    const scope = new WatchScope([]);
    scope.end(new Canceled("done"));
    let ran = false;
    await expect(scope.race((async () => (ran = true))())).rejects.toBeInstanceOf(Canceled);
    expect(ran).toBe(true);
  });
});

describe("WatchScope.endAt", () => {
  it("ends at the given time with the given reason", () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const scope = new WatchScope([]);
    scope.endAt(1_000_500, () => new Unauthenticated("expired"));
    vi.advanceTimersByTime(499);
    expect(scope.ended).toBe(false);
    vi.advanceTimersByTime(1);
    expect(scope.ended).toBe(true);
    expect(reasonOf(scope)).toEqual(new Unauthenticated("expired"));
  });

  it("ends at once when the time is now or past", () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const now = new WatchScope([]);
    now.endAt(1_000_000, () => new Unauthenticated("expired"));
    expect(now.ended).toBe(true);
    const past = new WatchScope([]);
    past.endAt(0, () => new Unauthenticated("expired"));
    expect(past.ended).toBe(true);
  });

  it("never ends for a time that is not finite", () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const scope = new WatchScope([]);
    scope.endAt(Infinity, () => new Unauthenticated("expired"));
    scope.endAt(NaN, () => new Unauthenticated("expired"));
    expect(vi.getTimerCount()).toBe(0);
    expect(scope.ended).toBe(false);
  });

  it("waits past setTimeout's longest delay in steps", () => {
    vi.useFakeTimers({ now: 0 });
    const scope = new WatchScope([]);
    const day = 24 * 3600 * 1000;
    scope.endAt(30 * day, () => new Unauthenticated("expired"));
    vi.advanceTimersByTime(30 * day - 1);
    expect(scope.ended).toBe(false);
    vi.advanceTimersByTime(1);
    expect(scope.ended).toBe(true);
  });

  it("clears its timer when the scope ends first", () => {
    vi.useFakeTimers({ now: 0 });
    const scope = new WatchScope([]);
    scope.endAt(60_000, () => new Unauthenticated("expired"));
    expect(vi.getTimerCount()).toBe(1);
    scope.end(new Canceled("left"));
    expect(vi.getTimerCount()).toBe(0);
    expect(reasonOf(scope)).toBeInstanceOf(Canceled);
  });
});
