/**
 * Events as JSON text, for the log's payload column and the bus. JSON has no Dates: every
 * tm_* field (tmCreate, tmUpdate, ...) travels as an ISO string and is revived on decode.
 *
 * An event is encoded once (encodeEvent): its payload, the resource it carries and the bulk of
 * its bytes, becomes JSON a single time; the log row stores that text and the bus message is the
 * envelope's few fields followed by the same text. Encode where both the row and the publish
 * need the event, and hand the EncodedEvent to both.
 */
import type { EventPayload, TalkEvent } from "../domain/model/events.js";

/** The part of an event beyond its envelope (type, seq, talk, customer, time, actor). */
export type EventBody = Omit<EventPayload, "type">;

/** An event and the JSON of its body, made once. */
export class EncodedEvent {
  constructor(
    readonly event: TalkEvent,
    /** JSON of the event's body (what the log's payload column holds). */
    readonly payload: string,
  ) {}

  /** The whole event as JSON (what the bus carries): its envelope, then the body's fields. */
  get text(): string {
    const { type, seq, chatId, customerId, tmCreate, actor } = this.event;
    const envelope = JSON.stringify({ type, seq, chatId, customerId, tmCreate, actor });
    return this.payload.length <= 2 ? envelope : `${envelope.slice(0, -1)},${this.payload.slice(1)}`;
  }
}

/** What an event carries beyond its envelope. */
export function bodyOf(event: TalkEvent): EventBody {
  const { seq: _seq, chatId: _chatId, customerId: _customerId, tmCreate: _tmCreate, actor: _actor, type: _type, ...body } = event;
  return body;
}

export function encodeEvent(event: TalkEvent): EncodedEvent {
  return new EncodedEvent(event, JSON.stringify(bodyOf(event)));
}

/** An event as given, encoded now if it was not yet. */
export function encoded(event: TalkEvent | EncodedEvent): EncodedEvent {
  return event instanceof EncodedEvent ? event : encodeEvent(event);
}

/** The event itself, encoded or not. */
export function eventOf(event: TalkEvent | EncodedEvent): TalkEvent {
  return event instanceof EncodedEvent ? event.event : event;
}

function reviveDates(key: string, value: unknown): unknown {
  return typeof value === "string" && /^tm[A-Z]/.test(key) ? new Date(value) : value;
}

export function decodeEvent(text: string): TalkEvent {
  return JSON.parse(text, reviveDates) as TalkEvent;
}
