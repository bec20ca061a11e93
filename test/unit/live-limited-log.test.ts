import { describe, expect, it } from "vitest";
import type { TalkEvent } from "../../src/domain/model/events.js";
import type { TalkId } from "../../src/domain/model/ids.js";
import type { EventLog } from "../../src/events/event-log.js";
import { limitedLog } from "../../src/events/limited-log.js";
import { event, settle, talkA } from "./live-fakes.js";

/** A log whose every call waits until the test finishes it. */
function heldLog() {
  const pending: { what: string; finish: (fail?: Error) => void }[] = [];
  const hold = <T>(what: string, value: T) =>
    new Promise<T>((resolve, reject) => pending.push({ what, finish: (fail) => (fail === undefined ? resolve(value) : reject(fail)) }));
  const log: EventLog = {
    read: (talkId: TalkId, afterSeq: number) => hold(`read${afterSeq}`, [event(talkId, afterSeq + 1)] as TalkEvent[]),
    heads: (ids: readonly TalkId[]) => hold(`heads${ids.length}`, new Map(ids.map((id) => [id, 9]))),
  };
  const started = () => pending.map((p) => p.what);
  return { log, pending, started };
}

describe("limitedLog", () => {
  it("runs at most `concurrency` calls at once, the rest in arrival order", async () => {
    const { log, pending, started } = heldLog();
    const limited = limitedLog(log, 2);
    const results = [limited.read(talkA, 0, 1), limited.heads([talkA]), limited.read(talkA, 2, 1), limited.read(talkA, 3, 1)];
    await settle();
    expect(started()).toEqual(["read0", "heads1"]);
    pending[1]!.finish();
    await settle();
    expect(started()).toEqual(["read0", "heads1", "read2"]);
    pending[0]!.finish();
    await settle();
    expect(started()).toEqual(["read0", "heads1", "read2", "read3"]);
    pending[2]!.finish();
    pending[3]!.finish();
    const [first, heads, third, fourth] = await Promise.all(results);
    expect(first).toEqual([event(talkA, 1)]);
    expect(heads).toEqual(new Map([[talkA, 9]]));
    expect(third).toEqual([event(talkA, 3)]);
    expect(fourth).toEqual([event(talkA, 4)]);
  });

  it("frees the slot of a call that fails", async () => {
    const { log, pending, started } = heldLog();
    const limited = limitedLog(log, 1);
    const failing = limited.read(talkA, 0, 1);
    const next = limited.read(talkA, 1, 1);
    await settle();
    pending[0]!.finish(new Error("db down"));
    await expect(failing).rejects.toThrow("db down");
    await settle();
    expect(started()).toEqual(["read0", "read1"]);
    pending[1]!.finish();
    await expect(next).resolves.toEqual([event(talkA, 2)]);
  });

  it("gives the slots back when idle, so a later burst runs `concurrency` at once again", async () => {
    const { log, pending, started } = heldLog();
    const limited = limitedLog(log, 2);
    const first = [limited.read(talkA, 0, 1), limited.read(talkA, 1, 1)];
    await settle();
    pending.splice(0).forEach((p) => p.finish());
    await Promise.all(first);
    const second = [limited.read(talkA, 10, 1), limited.read(talkA, 11, 1), limited.read(talkA, 12, 1)];
    await settle();
    expect(started()).toEqual(["read10", "read11"]);
    pending.splice(0).forEach((p) => p.finish());
    await settle();
    expect(started()).toEqual(["read12"]);
    pending.splice(0).forEach((p) => p.finish());
    await Promise.all(second);
  });

  it("passes the arguments through", async () => {
    const calls: unknown[] = [];
    const log: EventLog = {
      read: async (talkId, afterSeq, limit) => {
        calls.push(["read", talkId, afterSeq, limit]);
        return [];
      },
      heads: async (ids) => {
        calls.push(["heads", ids]);
        return new Map();
      },
    };
    const limited = limitedLog(log, 1);
    await limited.read(talkA, 5, 7);
    await limited.heads([talkA]);
    expect(calls).toEqual([
      ["read", talkA, 5, 7],
      ["heads", [talkA]],
    ]);
  });
});
