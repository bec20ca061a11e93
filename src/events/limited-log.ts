/**
 * An event log whose reads run at most `concurrency` at a time, in arrival order. Watchers
 * replay through it: when many of them open or resume at once (a reconnect storm, streams cut
 * off for lagging), their reads wait here, in the process, instead of taking every database
 * connection and leaving writers to time out waiting for one.
 */
import type { EventLog } from "./event-log.js";

export function limitedLog(log: EventLog, concurrency: number): EventLog {
  let running = 0;
  const waiting: (() => void)[] = [];
  const run = async <T>(read: () => Promise<T>): Promise<T> => {
    if (running >= concurrency) await new Promise<void>((resolve) => waiting.push(resolve));
    else running++;
    try {
      return await read();
    } finally {
      const next = waiting.shift();
      if (next === undefined) running--;
      else next();
    }
  };
  return {
    read: (talkId, afterSeq, limit) => run(() => log.read(talkId, afterSeq, limit)),
    heads: (talkIds) => run(() => log.heads(talkIds)),
  };
}
