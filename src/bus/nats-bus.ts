import { connect, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { errorLine } from "../error-line.js";
import { GaveUp, retryUntil, type FailedAttempt } from "../retry-until.js";
import { decodeEvent, encoded, type EncodedEvent } from "./event-codec.js";
import type { TalkEvent } from "../domain/model/events.js";
import type { AgentId, CustomerId, TalkId } from "../domain/model/ids.js";
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
  /** How long the first connection is retried before connect() gives up (NatsUnreachable); 0 tries once. */
  readonly startupTimeoutMs?: number;
  /** Told every failed attempt of the first connection. */
  readonly onConnectFailure?: (failure: FailedAttempt & { readonly servers: string }) => void;
  /** Told when the connection drops and when it is made again (to which server). */
  readonly onConnectionChange?: (change: { readonly kind: "disconnected" | "reconnected"; readonly server: string }) => void;
}

/** NATS could not be reached at start within the configured time; the message is one line. */
export class NatsUnreachable extends Error {
  readonly code = "nats_unreachable";
  constructor(servers: string, gaveUp: GaveUp, timeoutMs: number) {
    const seconds = Math.round(gaveUp.elapsedMs / 100) / 10;
    super(
      `NATS_URL: NATS at ${servers} not reachable: ${gaveUp.attempts} attempt${gaveUp.attempts === 1 ? "" : "s"} in ${seconds} s (TALKHUB_NATS_STARTUP_TIMEOUT_MS=${timeoutMs}), the last: ${errorLine(gaveUp.cause)}`,
      { cause: gaveUp.cause },
    );
    this.name = "NatsUnreachable";
  }
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

  /**
   * Connects, retrying the first connection with backoff for options.startupTimeoutMs (each
   * failure told to onConnectFailure); once connected, it reconnects for ever.
   */
  static async connect(options: NatsBusOptions): Promise<NatsBus> {
    const timeoutMs = options.startupTimeoutMs ?? 30_000;
    const servers = options.servers.split(",").map((s) => s.trim());
    const nc = await retryUntil(
      (remainingMs) =>
        connect({
          servers,
          name: "talkhub",
          reconnect: true,
          maxReconnectAttempts: -1,
          reconnectTimeWait: 250,
          pingInterval: 10_000,
          // One try of each server per attempt: the retries here are logged.
          waitOnFirstConnect: false,
          timeout: Math.max(1_000, Math.min(remainingMs, 5_000)),
        }),
      {
        timeoutMs,
        retryable: () => true,
        onFailure: (failure) => options.onConnectFailure?.({ ...failure, servers: servers.join(",") }),
      },
    ).catch((error: unknown) => {
      throw error instanceof GaveUp ? new NatsUnreachable(servers.join(","), error, timeoutMs) : error;
    });
    const bus = new NatsBus(nc, options);
    void bus.#watchStatus();
    return bus;
  }

  /** Tells the connection's drops and returns, until it closes. */
  async #watchStatus(): Promise<void> {
    const tell = this.options.onConnectionChange;
    if (tell === undefined) return;
    for await (const status of this.nc.status()) {
      if (status.type === "disconnect") tell({ kind: "disconnected", server: status.server });
      else if (status.type === "reconnect") tell({ kind: "reconnected", server: status.server });
    }
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
