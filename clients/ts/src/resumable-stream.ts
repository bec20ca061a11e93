/**
 * A server stream that survives its connection: when it breaks, it is opened again after a
 * backoff from the position of the last response handed to the consumer, and responses the
 * consumer already has are dropped, so the consumer sees every event once, in order. It ends
 * quietly when the caller's signal aborts (or the consumer stops iterating), and throws the
 * ConnectError of a terminal answer (retry-policy.ts).
 *
 * Phases of one attempt: open (headers, or the first response, or a second without failure:
 * "live"), deliver, fail, back off, open again. Every timer and listener of an attempt is
 * released when it ends, however it ends.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { backoffDelay, type BackoffOptions } from "./backoff.js";
import { isTerminal } from "./retry-policy.js";
import { canRefresh, readToken, type TokenSource } from "./token.js";

export type StreamStatus = "connecting" | "live" | "reconnecting" | "offline" | "stopped";

export interface WatchOptions {
  /** Aborting it ends the stream: the iteration completes without an error. */
  readonly signal?: AbortSignal;
  /**
   * Told every change of state, with the error that caused a reconnect or the stop ("stopped"
   * comes with a terminal error only: after the caller's own abort nothing more is told).
   */
  readonly onStatus?: (status: StreamStatus, error?: ConnectError) => void;
  readonly backoff?: BackoffOptions;
  /**
   * Reconnect when nothing, not even a heartbeat, arrived for this long (default 40 s; the
   * service sends a heartbeat every 15 s by default). 0 turns the watchdog off.
   */
  readonly idleMs?: number;
}

/** One RPC as the stream sees it: how to open it, and how a response moves the position. */
export interface ResumableCall<Res, Position> {
  /** Opens the RPC from the current position. */
  open(signal: AbortSignal, headers: Record<string, string>, onHeader: () => void): AsyncIterable<Res>;
  /** Records the response's position; false drops it (the consumer already has it). */
  accept(response: Res): boolean;
  position(): Position;
}

export interface StreamStats {
  /** Times the RPC was opened (1 + reconnects). */
  readonly opens: number;
  /** Responses dropped because the consumer already had them. */
  readonly duplicatesDropped: number;
  /** Why the last attempt ended, if one did. */
  readonly lastError: ConnectError | undefined;
}

/** A stream that goes silent for this long after opening without failing is taken as open. */
const assumeOpenMs = 1_000;

interface BrowserGlobals {
  readonly navigator?: { readonly onLine?: boolean };
  addEventListener?(type: string, listener: () => void): void;
  removeEventListener?(type: string, listener: () => void): void;
}
const browser = globalThis as BrowserGlobals;
const offline = (): boolean => browser.navigator?.onLine === false;

export class ResumableStream<Res, Position> implements AsyncIterable<Res> {
  #opens = 0;
  #duplicates = 0;
  #lastError: ConnectError | undefined;
  #started = false;

  constructor(
    private readonly call: ResumableCall<Res, Position>,
    private readonly token: TokenSource | undefined,
    private readonly options: WatchOptions = {},
  ) {}

  /** Where a reconnect resumes: the last seq delivered (WatchTalk) or the last cursor (WatchEvents). */
  get position(): Position {
    return this.call.position();
  }

  get stats(): StreamStats {
    return { opens: this.#opens, duplicatesDropped: this.#duplicates, lastError: this.#lastError };
  }

  [Symbol.asyncIterator](): AsyncIterator<Res> {
    if (this.#started) throw new Error("a resumable stream is iterated once");
    this.#started = true;
    return this.#run();
  }

  async *#run(): AsyncGenerator<Res, void, undefined> {
    const outer = this.options.signal;
    const idleMs = this.options.idleMs ?? 40_000;
    const status = (s: StreamStatus, error?: ConnectError): void => this.options.onStatus?.(s, error);
    let failures = 0;
    let refresh = false;
    const stopped = (): boolean => outer?.aborted === true;
    while (!stopped()) {
      if (offline()) {
        status("offline");
        await pause(60_000, outer);
        continue;
      }
      const attempt = new AbortController();
      const abortAttempt = (): void => attempt.abort(outer?.reason);
      const onOffline = (): void => attempt.abort(new ConnectError("the browser went offline", Code.Unavailable));
      outer?.addEventListener("abort", abortAttempt);
      browser.addEventListener?.("offline", onOffline);
      let lastSeen = Date.now();
      const watchdog =
        idleMs > 0
          ? setInterval(
              () => {
                if (Date.now() - lastSeen > idleMs) attempt.abort(new ConnectError(`no response for ${idleMs} ms`, Code.DeadlineExceeded));
              },
              Math.min(idleMs, 1_000),
            )
          : undefined;
      let live = false;
      const goLive = (): void => {
        if (live || attempt.signal.aborted) return;
        live = true;
        failures = 0;
        status("live");
      };
      // Connect sends a stream's headers with its first message, which on a quiet talk comes
      // with the first heartbeat; a refused stream fails at once.
      const assumeOpen = setTimeout(goLive, assumeOpenMs);
      status(this.#opens === 0 ? "connecting" : "reconnecting");
      this.#opens += 1;
      let error: ConnectError;
      try {
        const token = await readToken(this.token, refresh);
        const headers: Record<string, string> = token === undefined ? {} : { Authorization: `Bearer ${token}` };
        for await (const response of this.call.open(attempt.signal, headers, goLive)) {
          lastSeen = Date.now();
          goLive();
          refresh = false;
          if (this.call.accept(response)) yield response;
          else this.#duplicates += 1;
        }
        error = new ConnectError("the stream ended", Code.Unavailable);
      } catch (reason) {
        error = ConnectError.from(attempt.signal.aborted && attempt.signal.reason !== undefined ? attempt.signal.reason : reason);
      } finally {
        clearTimeout(assumeOpen);
        if (watchdog !== undefined) clearInterval(watchdog);
        outer?.removeEventListener("abort", abortAttempt);
        browser.removeEventListener?.("offline", onOffline);
        // Ends the RPC when the consumer stopped iterating.
        attempt.abort();
      }
      if (stopped()) break;
      this.#lastError = error;
      // A refused token: ask the token source for a new one, once, before giving up.
      if (error.code === Code.Unauthenticated && canRefresh(this.token) && !refresh) {
        refresh = true;
        continue;
      }
      if (isTerminal(error.code)) {
        status("stopped", error);
        throw error;
      }
      failures += 1;
      status(offline() ? "offline" : "reconnecting", error);
      await pause(backoffDelay(failures, this.options.backoff), outer);
    }
  }
}

/** Waits `ms`, less when the signal aborts or the browser comes back online. */
function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      browser.removeEventListener?.("online", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done);
    browser.addEventListener?.("online", done);
  });
}
