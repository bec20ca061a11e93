/** Percentiles and small timing helpers shared by the workloads. */
import { performance } from "node:perf_hooks";

/** Milliseconds since the epoch with sub-millisecond precision, comparable across processes. */
export const nowAbs = (): number => performance.timeOrigin + performance.now();

export interface Summary {
  readonly n: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

/** Nearest-rank percentile of an ascending array (q in 0..1). */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank] as number;
}

export function summarize(values: ArrayLike<number> | Iterable<number>): Summary {
  const sorted = Float64Array.from(values as Iterable<number>).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  const r = (x: number) => Math.round(x * 1000) / 1000;
  return {
    n: sorted.length,
    p50: r(percentile(sorted, 0.5)),
    p90: r(percentile(sorted, 0.9)),
    p99: r(percentile(sorted, 0.99)),
    max: r(sorted.length === 0 ? NaN : (sorted[sorted.length - 1] as number)),
    mean: r(sorted.length === 0 ? NaN : sum / sorted.length),
  };
}

/** A growable Float64 buffer (latency samples without boxed numbers). */
export class Samples {
  #data = new Float64Array(1024);
  #n = 0;
  push(value: number): void {
    if (this.#n === this.#data.length) {
      const bigger = new Float64Array(this.#data.length * 2);
      bigger.set(this.#data);
      this.#data = bigger;
    }
    this.#data[this.#n++] = value;
  }
  get length(): number {
    return this.#n;
  }
  values(): Float64Array {
    return this.#data.subarray(0, this.#n);
  }
}

export const median = (values: readonly number[]): number => percentile(Float64Array.from(values).sort(), 0.5);

export const round = (x: number, digits = 1): number => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
