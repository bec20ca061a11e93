/**
 * The life of one watch stream. Everything the stream holds (its slot in the stream quota, its
 * feed subscriptions, timers) is released here, once, on whichever end comes first: the call's
 * signal (the client cancelled or went away, the deadline passed), the process shutting down,
 * the caller's credential expiring or being revoked, a failure, or the generator finishing.
 *
 * Releasing on the signal, not only in the generator's `finally`, is what makes it hold: a
 * generator's `finally` runs only when its consumer resumes it or calls return(), and a
 * consumer blocked on a dead socket may never do either.
 */
import { Canceled, DomainError } from "../domain/model/errors.js";

/** setTimeout's longest delay (2^31-1 ms, 24.8 days); longer ones fire at once. */
const maxTimerMs = 0x7fffffff;

/** The domain error an aborted signal stands for: its own reason, or the client leaving. */
function reasonOf(signal: AbortSignal): DomainError {
  return signal.reason instanceof DomainError ? signal.reason : new Canceled("the stream was cancelled");
}

export class WatchScope {
  readonly #controller = new AbortController();
  readonly #releases: (() => void)[] = [];
  #ended = false;

  /** A scope that ends as soon as any of `sources` aborts. */
  constructor(sources: readonly AbortSignal[]) {
    for (const source of sources) {
      if (source.aborted) {
        this.end(reasonOf(source));
        return;
      }
      const onAbort = () => this.end(reasonOf(source));
      source.addEventListener("abort", onAbort, { once: true });
      this.#releases.push(() => source.removeEventListener("abort", onAbort));
    }
  }

  /** Aborted, with the domain error that ended the scope, when it ends. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** Runs `release` when the scope ends, or at once when it has ended already. */
  hold(release: () => void): void {
    if (this.#ended) release();
    else this.#releases.push(release);
  }

  /** Ends the scope (the first reason wins) and releases what it holds, last taken first. */
  end(reason: DomainError): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#controller.abort(reason);
    for (const release of this.#releases.splice(0).reverse()) release();
  }

  /** Throws the error the scope ended with, if it has ended. */
  throwIfEnded(): void {
    if (this.#ended) throw reasonOf(this.signal);
  }

  /** The result of `work`, or the scope's end as soon as it comes, whichever is first. */
  async race<T>(work: Promise<T>): Promise<T> {
    this.throwIfEnded();
    let onAbort = (): void => undefined;
    const ended = new Promise<never>((_, reject) => {
      onAbort = () => reject(reasonOf(this.signal));
      this.signal.addEventListener("abort", onAbort, { once: true });
    });
    try {
      return await Promise.race([work, ended]);
    } finally {
      this.signal.removeEventListener("abort", onAbort);
    }
  }

  /** Ends the scope with `reason()` at `at` (ms since the epoch); never when `at` is not finite. */
  endAt(at: number, reason: () => DomainError): void {
    if (!Number.isFinite(at)) return;
    let timer: NodeJS.Timeout | undefined;
    const check = () => {
      const left = at - Date.now();
      if (left <= 0) this.end(reason());
      else timer = setTimeout(check, Math.min(left, maxTimerMs));
    };
    check();
    this.hold(() => clearTimeout(timer));
  }
}
