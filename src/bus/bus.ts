import type { TalkEvent } from "../domain/model/events.js";
import type { AgentId, CustomerId, TalkId } from "../domain/model/ids.js";
import type { EventSink } from "../events/event-sink.js";

export type Unsubscribe = () => void;
export type EventListener = (event: TalkEvent) => void;

/**
 * Carries committed events between processes. Delivery is best effort: an event may be lost
 * (a publish after a crash, a bus outage) or arrive twice; consumers order by seq and fill
 * gaps from the event log, which is the truth.
 */
export interface EventBus extends EventSink {
  /** Every event of one talk published from now on. */
  subscribeTalk(customerId: CustomerId, talkId: TalkId, listener: EventListener): Unsubscribe;
  /** participant_joined events that name this agent, so an agent's feed learns of new talks. */
  subscribeAgent(customerId: CustomerId, agentId: AgentId, listener: EventListener): Unsubscribe;
  /** Whether the bus can carry events right now (readiness). */
  readonly connected: boolean;
  close(): Promise<void>;
}

/** The agent a participant_joined event adds, if it is one. */
export function joinedAgent(event: TalkEvent): AgentId | undefined {
  return event.type === "participant_joined" ? event.participant.ownerId : undefined;
}
