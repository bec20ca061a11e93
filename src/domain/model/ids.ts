import { uuidv7 } from "uuidv7";

/**
 * Branded identifiers: a TalkId cannot be passed where a MessageId is meant. Values are
 * branded only after validation at the edge (see validate.ts) or when read from the store.
 */
declare const brand: unique symbol;
type Brand<T, B extends string> = T & { readonly [brand]: B };

export type CustomerId = Brand<string, "CustomerId">;
export type AgentId = Brand<string, "AgentId">;
export type TalkId = Brand<string, "TalkId">;
export type ParticipantId = Brand<string, "ParticipantId">;
export type MessageId = Brand<string, "MessageId">;

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether a string is a UUID in its canonical 8-4-4-4-12 form (any version). */
export function isUuid(value: string): boolean {
  return uuidPattern.test(value);
}

/** A new time-ordered id (UUID v7). */
export function newId<T extends string>(): T {
  return uuidv7() as T;
}
