import { describe, expect, it } from "vitest";
import { Canceled } from "../../src/domain/model/errors.js";
import { LiveBody, type Outlet } from "../../src/live/live-body.js";
import { settle } from "./live-fakes.js";

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

  it("lets two messages wait on a consumer that pulls, and asks for more once it has taken both", async () => {
    const sends: boolean[] = [];
    const body = LiveBody.of<number, string>(
      (outlet, stop) =>
        counting(100, [])(
          {
            send: (n) => {
              const taken = outlet.send(n);
              sends.push(taken);
              return taken;
            },
            onWritable: (listener) => outlet.onWritable(listener),
          },
          stop,
        ),
      encoding,
    );
    const iterator = body[Symbol.asyncIterator]();
    // The producer runs as soon as the consumer asks for the iterator.
    expect(sends).toEqual([true, false]);
    expect(await iterator.next()).toEqual({ value: "m1", done: false });
    expect(sends).toEqual([true, false]);
    expect(await iterator.next()).toEqual({ value: "m2", done: false });
    expect(sends).toEqual([true, false, true, false]);
    expect(await iterator.next()).toEqual({ value: "m3", done: false });
    expect(sends).toEqual([true, false, true, false]);
    expect(await iterator.next()).toEqual({ value: "m4", done: false });
    expect(sends).toEqual([true, false, true, false, true, false]);
    await iterator.return?.();
  });

  it("says the consumer can take more only after a send was refused", async () => {
    const log: string[] = [];
    let outlet: Outlet<number> | undefined;
    let finish: () => void = () => undefined;
    const body = LiveBody.of<number, string>(async (given) => {
      outlet = given;
      given.onWritable(() => log.push("writable"));
      await new Promise<void>((resolve) => (finish = resolve));
    }, encoding);
    const iterator = body[Symbol.asyncIterator]();
    log.push(`sent 1: ${outlet!.send(1)}`);
    expect(await iterator.next()).toEqual({ value: "m1", done: false });
    log.push(`sent 2: ${outlet!.send(2)}`, `sent 3: ${outlet!.send(3)}`);
    expect(await iterator.next()).toEqual({ value: "m2", done: false });
    log.push("took 2");
    expect(await iterator.next()).toEqual({ value: "m3", done: false });
    expect(log).toEqual(["sent 1: true", "sent 2: true", "sent 3: false", "took 2", "writable"]);
    finish();
    expect(await iterator.next()).toEqual({ value: undefined, done: true });
  });

  it("gives the consumer what a producer ignoring the buffer sends, when it never asked to hear of room", async () => {
    const body = LiveBody.of<number, string>(async (outlet) => {
      for (let i = 1; i <= 3; i++) outlet.send(i);
    }, encoding);
    const taken: string[] = [];
    for await (const message of body) taken.push(message);
    expect(taken).toEqual(["m1", "m2", "m3"]);
  });

  it("wakes a consumer waiting for a message when one is sent, and ends it when the producer ends", async () => {
    let outlet: Outlet<number> | undefined;
    let finish: () => void = () => undefined;
    const body = LiveBody.of<number, string>(async (given) => {
      outlet = given;
      await new Promise<void>((resolve) => (finish = resolve));
    }, encoding);
    const iterator = body[Symbol.asyncIterator]();
    const first = iterator.next();
    await settle();
    outlet!.send(1);
    expect(await first).toEqual({ value: "m1", done: false });
    const last = iterator.next();
    await settle();
    finish();
    expect(await last).toEqual({ value: undefined, done: true });
    expect(await iterator.next()).toEqual({ value: undefined, done: true });
  });

  it("gives a consumer what was sent before the producer ended by itself, then the end", async () => {
    const ends: unknown[] = [];
    const body = LiveBody.of<number, string>(async (outlet) => {
      outlet.send(1);
    }, encoding);
    body.onEnd((error) => {
      ends.push(error);
      return error;
    });
    const iterator = body[Symbol.asyncIterator]();
    await settle();
    expect(await iterator.next()).toEqual({ value: "m1", done: false });
    expect(await iterator.next()).toEqual({ value: undefined, done: true });
    expect(ends).toEqual([undefined]);
  });

  it("throws to a consumer the producer's failure as the end hooks map it, after the messages sent before it", async () => {
    let outlet: Outlet<number> | undefined;
    let fail: (error: unknown) => void = () => undefined;
    const body = LiveBody.of<number, string>(async (given) => {
      outlet = given;
      await new Promise<void>((_, reject) => (fail = reject));
    }, encoding);
    body.onEnd((error) => new Error(`mapped ${(error as Error).message}`));
    const iterator = body[Symbol.asyncIterator]();
    outlet!.send(1);
    expect(await iterator.next()).toEqual({ value: "m1", done: false });
    const waiting = iterator.next();
    await settle();
    fail(new Error("lost"));
    await expect(waiting).rejects.toMatchObject({ message: "mapped lost" });
    await expect(iterator.next()).rejects.toMatchObject({ message: "mapped lost" });
  });

  it("ends a stream whose producer rejects with nothing as failed, not as a clean end", async () => {
    const seen: unknown[] = [];
    const body = LiveBody.of<number, string>(() => Promise.reject(undefined), encoding);
    body.onEnd((error) => {
      seen.push(error);
      return error;
    });
    await expect(body.runFrames({ write: () => true, onDrain: () => undefined })).rejects.toMatchObject({ message: "the stream failed" });
    expect(seen).toHaveLength(1);
    expect(seen[0]).toBeInstanceOf(Error);

    const pulled = LiveBody.of<number, string>(() => Promise.reject(undefined), encoding);
    await expect(pulled[Symbol.asyncIterator]().next()).rejects.toMatchObject({ message: "the stream failed" });
  });

  it("resolves a byte transport's run when the stream ends by itself, its hooks given no error", async () => {
    const frames: number[] = [];
    const ends: unknown[] = [];
    const body = LiveBody.of<number, string>(async (outlet) => {
      outlet.send(7);
    }, encoding);
    body.onEnd((error) => {
      ends.push(error);
      return error;
    });
    await expect(
      body.runFrames({
        write: (frame) => {
          frames.push(frame[0] as number);
          return true;
        },
        onDrain: () => undefined,
      }),
    ).resolves.toBeUndefined();
    expect(frames).toEqual([7]);
    expect(ends).toEqual([undefined]);

    const unhooked = LiveBody.of<number, string>(async () => undefined, encoding);
    await expect(unhooked.runFrames({ write: () => true, onDrain: () => undefined })).resolves.toBeUndefined();
  });

  it("returns from a consumer's stop only once the producer has given everything back", async () => {
    const log: string[] = [];
    const ends: unknown[] = [];
    const body = LiveBody.of<number, string>(async (outlet, stop) => {
      outlet.send(1);
      await new Promise<void>((resolve) => stop.addEventListener("abort", () => resolve(), { once: true }));
      await settle();
      log.push("released");
      throw new Canceled("stopped");
    }, encoding);
    body.onEnd((error) => {
      ends.push(error);
      return error;
    });
    const iterator = body[Symbol.asyncIterator]();
    expect(await iterator.next()).toEqual({ value: "m1", done: false });
    expect(await iterator.return?.()).toEqual({ value: undefined, done: true });
    expect(log).toEqual(["released"]);
    expect(ends).toHaveLength(1);
    expect(ends[0]).toBeInstanceOf(Canceled);
  });
});
