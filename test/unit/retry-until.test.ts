/**
 * Start-up retries: tried until it works or the time runs out, waits doubling up to a cap,
 * each failure told; an error not worth retrying is thrown at once.
 */
import { describe, expect, it } from "vitest";
import { GaveUp, retryUntil, type FailedAttempt } from "../../src/retry-until.js";

const refused = () => Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });

describe("retryUntil", () => {
  it("returns what the first successful attempt returns, having told each failure and its wait", async () => {
    const failures: FailedAttempt[] = [];
    let tries = 0;
    const result = await retryUntil(
      async () => {
        if (++tries < 4) throw refused();
        return "up";
      },
      { timeoutMs: 5_000, retryable: () => true, onFailure: (f) => failures.push(f), firstDelayMs: 1, maxDelayMs: 3 },
    );
    expect(result).toBe("up");
    expect(failures.map((f) => [f.attempt, f.retryInMs])).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
    ]);
  });

  it("gives up once the time has passed, with the attempts made and the last error", async () => {
    const failures: FailedAttempt[] = [];
    const last = refused();
    const started = Date.now();
    const error = await retryUntil(
      async () => {
        throw last;
      },
      { timeoutMs: 100, retryable: () => true, onFailure: (f) => failures.push(f), firstDelayMs: 10, maxDelayMs: 20 },
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GaveUp);
    const gaveUp = error as GaveUp;
    expect(gaveUp.cause).toBe(last);
    expect(gaveUp.attempts).toBe(failures.length + 1);
    expect(gaveUp.attempts).toBeGreaterThanOrEqual(3);
    expect(Date.now() - started).toBeGreaterThanOrEqual(100);
    // The last wait is cut to the time left, never past it.
    expect(failures.every((f) => f.retryInMs <= 20)).toBe(true);
  });

  it("tries once with no time given, and throws an error not worth retrying as it is", async () => {
    let tries = 0;
    const once = await retryUntil(
      async () => {
        tries++;
        throw refused();
      },
      { timeoutMs: 0, retryable: () => true, onFailure: () => undefined },
    ).catch((e: unknown) => e);
    expect(once).toBeInstanceOf(GaveUp);
    expect(tries).toBe(1);

    const denied = new Error("password authentication failed");
    const thrown = await retryUntil(
      async () => {
        throw denied;
      },
      { timeoutMs: 5_000, retryable: (e) => e !== denied, onFailure: () => undefined },
    ).catch((e: unknown) => e);
    expect(thrown).toBe(denied);
  });
});
