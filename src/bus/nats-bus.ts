import { connect, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { decodeEvent, encoded, type EncodedEvent } from "./event-codec.js";
import type { TalkEvent } from "../domain/events.js";
import type { AgentId, CustomerId, TalkId } from "../domain/ids.js";
import { joinedAgent, type EventBus, type EventListener, type Unsubscribe } from "./bus.js";

/** Subject names, under a prefix so that deployments (and test runs) sharing a NATS never mix. */
export function subjects(prefix: string) {
  return {
    talk: (customerId: CustomerId, talkId: TalkId) => `${prefix}.talk.${customerId}.${talkId}`,
    agent: (customerId: CustomerId, agentId: AgentId) => `${prefix}.agent.${customerId}.${agentId}`,
  } as const;
}

export interface NatsBusOptions {
  readonly servers: string;
  readonly prefix: string;
  /** Called when a publish or a received message fails; delivery is then made good from the log. */
  readonly onError: (error: unknown) => void;
}

/**
 * The bus over NATS core pub/sub, one subject per talk and one per agent. It reconnects for
 * ever; while NATS is away publishes are buffered by the client or lost, and watchers fill
 * what they miss from the event log.
 */
export class NatsBus implements EventBus {
  readonly #subjects: ReturnType<typeof subjects>;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly options: NatsBusOptions,
  ) {
    this.#subjects = subjects(options.prefix);
  }

  static async connect(options: NatsBusOptions): Promise<NatsBus> {
    const nc = await connect({
      servers: options.servers.split(","),
      name: "talkhub",
      reconnect: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      pingInterval: 10_000,
      waitOnFirstConnect: true,
    });
    return new NatsBus(nc, options);
  }

  publish(events: readonly (TalkEvent | EncodedEvent)[]): void {
    for (const given of events) {
      try {
        const { event, text } = encoded(given);
        // Bytes made once (Buffer's UTF-8 is cheaper than the client's TextEncoder), for both subjects.
        const data = Buffer.from(text);
        this.nc.publish(this.#subjects.talk(event.customerId, event.chatId), data);
        const agent = joinedAgent(event);
        if (agent !== undefined) this.nc.publish(this.#subjects.agent(event.customerId, agent), data);
      } catch (error) {
        this.options.onError(error);
      }
    }
  }

  #subscribe(subject: string, listener: EventListener): Unsubscribe {
    const sub: Subscription = this.nc.subscribe(subject, {
      callback: (error, msg) => {
        if (error !== null) return this.options.onError(error);
        try {
          listener(decodeEvent(msg.string()));
        } catch (decodeError) {
          this.options.onError(decodeError);
        }
      },
    });
    return () => sub.unsubscribe();
  }

  subscribeTalk(customerId: CustomerId, talkId: TalkId, listener: EventListener): Unsubscribe {
    return this.#subscribe(this.#subjects.talk(customerId, talkId), listener);
  }

  subscribeAgent(customerId: CustomerId, agentId: AgentId, listener: EventListener): Unsubscribe {
    return this.#subscribe(this.#subjects.agent(customerId, agentId), listener);
  }

  /** Whether the connection is up right now (for readiness). */
  get connected(): boolean {
    return !this.nc.isClosed() && this.nc.info !== undefined;
  }

  async close(): Promise<void> {
    await this.nc.close();
  }
}
