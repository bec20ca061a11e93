import { describe, expect, it } from "vitest";
import { Canceled } from "../../src/domain/model/errors.js";
import { LiveBody, type Outlet } from "../../src/live/live-body.js";

const encoding = { message: (n: number) => `m${n}`, frame: (n: number) => Uint8Array.of(n) };

/** A producer that sends 1..n as fast as its outlet takes them, then waits to be stopped. */
function counting(n: number, log: string[]) {
  return async (outlet: Outlet<number>, stop: AbortSignal) => {
    let next = 1;
    const pump = () => {
      while (next <= n) if (!outlet.send(next++)) return;
    };
    outlet.onWritable(pump);
    pump();
    try {
      await new Promise<void>((_, reject) => stop.addEventListener("abort", () => reject(new Canceled("stopped")), { once: true }));
    } finally {
      log.push("ended");
    }
  };
}

describe("LiveBody", () => {
  it("writes frames to a byte transport, holding back while it is full and going on when it drains", async () => {
    const written: number[] = [];
    let drain: () => void = () => undefined;
    let end: (error: unknown) => void = () => undefined;
    const body = LiveBody.of<number, string>(async (outlet) => {
      for (let i = 1; i <= 4; i++) if (!outlet.send(i)) await new Promise<void>((resolve) => outlet.onWritable(resolve));
      await new Promise<void>((_, reject) => (end = reject));
    }, encoding);
    const running = body.runFrames({
      write: (frame) => {
        written.push(frame[0] as number);
        return written.length !== 2;
      },
      onDrain: (listener) => (drain = listener),
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(written).toEqual([1, 2]);
    drain();
    await new Promise((resolve) => setImmediate(resolve));
    expect(written).toEqual([1, 2, 3, 4]);
    end(new Canceled("done"));
    await expect(running).rejects.toBeInstanceOf(Canceled);
  });

  it("runs its end hooks once, in the order added, each mapping the error of the one before", async () => {
    const seen: string[] = [];
    const body = LiveBody.of<number, string>(() => Promise.reject(new Error("a")), encoding);
    body.onEnd((error) => {
      seen.push(`first:${(error as Error).message}`);
      return new Error("b");
    });
    body.onEnd((error) => {
      seen.push(`second:${(error as Error).message}`);
      return error;
    });
    await expect(body.runFrames({ write: () => true, onDrain: () => undefined })).rejects.toThrow("b");
    expect(seen).toEqual(["first:a", "second:b"]);
    await expect(body.runFrames({ write: () => true, onDrain: () => undefined })).rejects.toThrow("a live body runs once");
  });

  it("gives messages to a consumer that pulls, a bounded number ahead, and stops the producer when the consumer stops", async () => {
    const log: string[] = [];
    let sent = 0;
    const body = LiveBody.of<number, string>(
      (outlet, stop) =>
        counting(100, log)(
          {
            send: (n) => {
              sent = n;
              return outlet.send(n);
            },
            onWritable: (listener) => outlet.onWritable(listener),
          },
          stop,
        ),
      encoding,
    );
    const iterator = body[Symbol.asyncIterator]();
    expect(await iterator.next()).toEqual({ value: "m1", done: false });
    expect(await iterator.next()).toEqual({ value: "m2", done: false });
    // Not all 100 were pushed ahead of the reads.
    expect(sent).toBeLessThanOrEqual(4);
    await iterator.return?.();
    expect(log).toEqual(["ended"]);
  });
});
