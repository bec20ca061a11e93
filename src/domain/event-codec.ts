/**
 * Events as JSON text, for the log's payload column and the bus. JSON has no Dates: every
 * tm_* field (tmCreate, tmUpdate, ...) travels as an ISO string and is revived on decode.
 */
import type { TalkEvent } from "./events.js";

function reviveDates(key: string, value: unknown): unknown {
  return typeof value === "string" && /^tm[A-Z]/.test(key) ? new Date(value) : value;
}

export function encodeEvent(event: TalkEvent): string {
  return JSON.stringify(event);
}

export function decodeEvent(text: string): TalkEvent {
  return JSON.parse(text, reviveDates) as TalkEvent;
}
