import { eventOf, type EncodedEvent } from "./event-codec.js";
import type { TalkEvent } from "../domain/model/events.js";
import type { AgentId, CustomerId, TalkId } from "../domain/model/ids.js";
import { joinedAgent, type EventBus, type EventListener, type Unsubscribe } from "./bus.js";

/** Listener sets by key, removing a key with its last listener. */
class Listeners<K> {
  readonly #byKey = new Map<K, Set<EventListener>>();

  add(key: K, listener: EventListener): Unsubscribe {
    let set = this.#byKey.get(key);
    if (set === undefined) {
      set = new Set();
      this.#byKey.set(key, set);
    }
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.#byKey.delete(key);
    };
  }

  emit(key: K, event: TalkEvent): void {
    const set = this.#byKey.get(key);
    if (set !== undefined) for (const listener of [...set]) listener(event);
  }
}

/** The bus of a single process (no NATS_URL): delivery within this process only. */
export class LocalBus implements EventBus {
  readonly #talks = new Listeners<TalkId>();
  readonly #agents = new Listeners<AgentId>();

  publish(events: readonly (TalkEvent | EncodedEvent)[]): void {
    for (const given of events) {
      const event = eventOf(given);
      this.#talks.emit(event.chatId, event);
      const agent = joinedAgent(event);
      if (agent !== undefined) this.#agents.emit(agent, event);
    }
  }

  subscribeTalk(_customerId: CustomerId, talkId: TalkId, listener: EventListener): Unsubscribe {
    return this.#talks.add(talkId, listener);
  }

  subscribeAgent(_customerId: CustomerId, agentId: AgentId, listener: EventListener): Unsubscribe {
    return this.#agents.add(agentId, listener);
  }

  readonly connected = true;

  async close(): Promise<void> {}
}
