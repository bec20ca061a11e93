/** How long to wait before reconnecting a stream: exponential, capped, with jitter. */
export interface BackoffOptions {
  /** The first wait (default 250 ms). */
  readonly initialMs?: number;
  /** The longest wait (default 5 s). */
  readonly maxMs?: number;
}

/**
 * The wait before attempt `failures + 1` after `failures` failures in a row: initialMs doubled
 * per failure up to maxMs, then ±25 % so that many clients cut off at once do not come back
 * at once.
 */
export function backoffDelay(failures: number, options: BackoffOptions = {}, random: () => number = Math.random): number {
  const initial = options.initialMs ?? 250;
  const max = options.maxMs ?? 5_000;
  const base = Math.min(max, initial * 2 ** Math.min(Math.max(failures - 1, 0), 20));
  return Math.round(base * (0.75 + random() * 0.5));
}
