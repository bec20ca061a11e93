/**
 * Keeps a server stream open: reopens it after a dropped connection with a backoff, at once
 * when the browser comes back online, and when it stays silent longer than the server's
 * heartbeats allow. The caller's `open` resumes from wherever it got to (after_seq, cursor).
 */
import { ConnectError } from "./api.js";

export type LiveStatus = "connecting" | "live" | "reconnecting" | "offline" | "stopped";

export interface LiveOptions<T> {
  /** Opens the stream; `onOpen` is called once the server has answered. */
  readonly open: (signal: AbortSignal, onOpen: () => void) => AsyncIterable<T>;
  readonly onItem: (item: T) => void;
  /** "stop" ends for good (the talk is gone...); by default every error is retried. */
  readonly onError?: (error: ConnectError) => "retry" | "stop" | Promise<"retry" | "stop">;
  readonly onStatus?: (status: LiveStatus, detail?: string) => void;
  /** Reconnect when nothing arrives for this long (heartbeats come every 15 s by default). */
  readonly idleMs?: number;
}

export interface Live {
  stop(): void;
  /** Times the stream was (re)opened. */
  readonly opens: number;
}

const maxBackoffMs = 5_000;
const assumeOpenMs = 1_000;

export function keepLive<T>(options: LiveOptions<T>): Live {
  const idleMs = options.idleMs ?? 40_000;
  let stopped = false;
  let current: AbortController | undefined;
  let wake: (() => void) | undefined;
  let lastSeen = Date.now();
  let opens = 0;
  const status = (s: LiveStatus, detail?: string): void => options.onStatus?.(s, detail);

  const onOffline = (): void => {
    status("offline");
    current?.abort(new Error("offline"));
  };
  const onOnline = (): void => wake?.();
  addEventListener("offline", onOffline);
  addEventListener("online", onOnline);
  const watchdog = window.setInterval(() => {
    if (Date.now() - lastSeen > idleMs) current?.abort(new Error("the stream went silent"));
  }, 1_000);

  const pause = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const timer = window.setTimeout(done, ms);
      function done(): void {
        window.clearTimeout(timer);
        wake = undefined;
        resolve();
      }
      wake = done;
    });

  void (async () => {
    let failures = 0;
    while (!stopped) {
      if (!navigator.onLine) {
        status("offline");
        await pause(60_000);
        continue;
      }
      const controller = new AbortController();
      current = controller;
      lastSeen = Date.now();
      status(opens === 0 ? "connecting" : "reconnecting");
      opens += 1;
      let detail = "the stream ended";
      let shownLive = false;
      const showLive = (): void => {
        if (shownLive || controller.signal.aborted) return;
        shownLive = true;
        status("live");
      };
      const onOpen = (): void => {
        failures = 0;
        showLive();
      };
      // Connect servers send a stream's headers with its first message, which on a quiet talk
      // is the first heartbeat. A refused or failed stream fails at once, so a stream that has
      // not failed after a moment is taken as open.
      const assumeOpen = window.setTimeout(showLive, assumeOpenMs);
      try {
        for await (const item of options.open(controller.signal, onOpen)) {
          lastSeen = Date.now();
          onOpen();
          options.onItem(item);
        }
      } catch (error) {
        window.clearTimeout(assumeOpen);
        if (stopped) break;
        const e = ConnectError.from(error);
        detail = e.rawMessage;
        if (!controller.signal.aborted && (await (options.onError?.(e) ?? "retry")) === "stop") {
          stopped = true;
          status("stopped", e.rawMessage);
          break;
        }
      }
      window.clearTimeout(assumeOpen);
      if (stopped) break;
      failures += 1;
      status(navigator.onLine ? "reconnecting" : "offline", detail);
      const backoff = Math.min(maxBackoffMs, 250 * 2 ** Math.min(failures - 1, 5));
      await pause(backoff * (0.75 + Math.random() * 0.5));
    }
    removeEventListener("offline", onOffline);
    removeEventListener("online", onOnline);
    window.clearInterval(watchdog);
  })();

  return {
    stop() {
      stopped = true;
      current?.abort(new Error("stopped"));
      wake?.();
    },
    get opens() {
      return opens;
    },
  };
}
