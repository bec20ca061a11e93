/** Fakes for the live-delivery unit tests: events, and an in-memory event log that records its reads. */
import type { TalkEvent } from "../../src/domain/model/events.js";
import type { AgentId, CustomerId, TalkId } from "../../src/domain/model/ids.js";
import type { EventLog } from "../../src/events/event-log.js";

export const customerId = "0190a3b4-0000-7000-8000-000000000001" as CustomerId;
export const talkA = "0190a3b4-0000-7000-8000-0000000000a1" as TalkId;
export const talkB = "0190a3b4-0000-7000-8000-0000000000b2" as TalkId;
export const agentX = "0190a3b4-0000-7000-8000-0000000000f1" as AgentId;

/** A message_created event (only the header matters to delivery). */
export function event(chatId: TalkId, seq: number): TalkEvent {
  return {
    type: "message_created",
    seq,
    chatId,
    customerId,
    tmCreate: new Date(0),
    actor: { ownerType: "system" },
    message: { id: `m${seq}` },
  } as unknown as TalkEvent;
}

/** A participant_joined event for `agentId`. */
export function joined(chatId: TalkId, seq: number, agentId: AgentId): TalkEvent {
  return {
    type: "participant_joined",
    seq,
    chatId,
    customerId,
    tmCreate: new Date(0),
    actor: { ownerType: "system" },
    participant: { ownerId: agentId, joinedSeq: seq },
    talk: { id: chatId, type: "normal" },
  } as unknown as TalkEvent;
}

/** An event log held in memory; `gate` (when set) holds every read until it resolves. */
export class MemoryLog implements EventLog {
  readonly events = new Map<TalkId, TalkEvent[]>();
  readonly reads: { talkId: TalkId; afterSeq: number; limit: number }[] = [];
  readonly headCalls: TalkId[][] = [];
  gate: Promise<void> | undefined;
  failNext: Error | undefined;

  /** Appends events 1..n (or from..to) to a talk's log. */
  fill(talkId: TalkId, to: number, from = 1): TalkEvent[] {
    const list = this.events.get(talkId) ?? [];
    const added: TalkEvent[] = [];
    for (let seq = from; seq <= to; seq++) added.push(event(talkId, seq));
    list.push(...added);
    this.events.set(talkId, list);
    return added;
  }

  /** Drops a talk's events up to `seq`, as retention does. */
  trim(talkId: TalkId, seq: number): void {
    this.events.set(
      talkId,
      (this.events.get(talkId) ?? []).filter((e) => e.seq > seq),
    );
  }

  async read(talkId: TalkId, afterSeq: number, limit: number): Promise<TalkEvent[]> {
    this.reads.push({ talkId, afterSeq, limit });
    await this.gate;
    this.#maybeFail();
    return (this.events.get(talkId) ?? []).filter((e) => e.seq > afterSeq).slice(0, limit);
  }

  async heads(talkIds: readonly TalkId[]): Promise<Map<TalkId, number>> {
    this.headCalls.push([...talkIds]);
    await this.gate;
    this.#maybeFail();
    const heads = new Map<TalkId, number>();
    for (const id of talkIds) {
      const list = this.events.get(id);
      if (list !== undefined && list.length > 0) heads.set(id, list[list.length - 1]!.seq);
    }
    return heads;
  }

  #maybeFail(): void {
    const error = this.failNext;
    this.failNext = undefined;
    if (error !== undefined) throw error;
  }
}

/** Lets pending promise callbacks and I/O callbacks run. */
export const settle = () => new Promise<void>((resolve) => setImmediate(resolve));
