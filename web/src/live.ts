/**
 * Runs one of the client package's resumable streams for a view. Reconnecting, resuming from
 * the last seq or cursor, backoff, the browser's online/offline and the silence watchdog all
 * happen inside the stream (clients/ts/src/resumable-stream.ts); the view sees items in order,
 * its status, and the terminal error that ended the stream, if one did.
 */
import type { StreamStatus } from "../../clients/ts/src/index.js";
import { ConnectError } from "./api.js";

export type LiveStatus = StreamStatus;

export interface Live {
  stop(): void;
}

export function follow<T>(
  open: (signal: AbortSignal) => AsyncIterable<T>,
  onItem: (item: T) => void,
  /** The terminal error (PERMISSION_DENIED, NOT_FOUND, OUT_OF_RANGE...); not called after stop(). */
  onEnd: (error: ConnectError) => void,
): Live {
  const controller = new AbortController();
  void (async () => {
    try {
      for await (const item of open(controller.signal)) {
        if (controller.signal.aborted) break;
        onItem(item);
      }
    } catch (error) {
      if (!controller.signal.aborted) onEnd(ConnectError.from(error));
    }
  })();
  return { stop: () => controller.abort() };
}
