/**
 * Start-up retries: a server that is not up yet (Postgres, NATS) is tried again with backoff
 * for a configured time, each failure told to the caller to log, before the process gives up.
 */
import { setTimeout as sleep } from "node:timers/promises";

/** One failed attempt, told before the wait that follows it. */
export interface FailedAttempt {
  /** 1 for the first try. */
  readonly attempt: number;
  readonly error: unknown;
  /** The wait before the next try. */
  readonly retryInMs: number;
}

/** The attempts failed until the time ran out; the last error is the cause. */
export class GaveUp extends Error {
  constructor(
    readonly attempts: number,
    readonly elapsedMs: number,
    cause: unknown,
  ) {
    super(`gave up after ${attempts} attempt${attempts === 1 ? "" : "s"} in ${(elapsedMs / 1000).toFixed(1)} s`, { cause });
    this.name = "GaveUp";
  }
}

export interface RetryOptions {
  /** How long to keep trying; 0 tries once. */
  readonly timeoutMs: number;
  /** Errors worth another try; others are thrown at once, as they are. */
  readonly retryable: (error: unknown) => boolean;
  readonly onFailure: (failure: FailedAttempt) => void;
  /** The first wait, doubled after each failure up to maxDelayMs. */
  readonly firstDelayMs?: number;
  readonly maxDelayMs?: number;
}

/** Calls `attempt` until it resolves; throws GaveUp once `timeoutMs` has passed. */
export async function retryUntil<T>(attempt: (remainingMs: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const started = Date.now();
  const deadline = started + options.timeoutMs;
  let delay = options.firstDelayMs ?? 250;
  for (let tries = 1; ; tries++) {
    try {
      return await attempt(Math.max(deadline - Date.now(), 0));
    } catch (error) {
      if (!options.retryable(error)) throw error;
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new GaveUp(tries, Date.now() - started, error);
      const wait = Math.min(delay, remaining);
      options.onFailure({ attempt: tries, error, retryInMs: wait });
      await sleep(wait);
      delay = Math.min(delay * 2, options.maxDelayMs ?? 5_000);
    }
  }
}
