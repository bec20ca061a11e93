import type { TalkEvent } from "../domain/events.js";
import type { TalkId } from "../domain/ids.js";
import type { EventSink } from "./event-sink.js";

type Listener = (event: TalkEvent) => void;

/** The in-process bus: delivers committed events to this process's subscribers, per talk. */
export class LocalBus implements EventSink {
  readonly #listeners = new Map<TalkId, Set<Listener>>();

  publish(events: readonly TalkEvent[]): void {
    for (const event of events) {
      const listeners = this.#listeners.get(event.chatId);
      if (listeners === undefined) continue;
      for (const listener of listeners) listener(event);
    }
  }

  /** Calls `listener` for each event of a talk published from now on; returns the unsubscribe. */
  subscribe(talkId: TalkId, listener: Listener): () => void {
    let listeners = this.#listeners.get(talkId);
    if (listeners === undefined) {
      listeners = new Set();
      this.#listeners.set(talkId, listeners);
    }
    listeners.add(listener);
    return () => {
      listeners.delete(listener);
      if (listeners.size === 0) this.#listeners.delete(talkId);
    };
  }
}
