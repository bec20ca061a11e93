/**
 * The events a talk's log records, one per change, as a discriminated union on `type`.
 * Each carries the resource after the change.
 */
import type { AgentId, CustomerId, TalkId } from "./ids.js";
import type { Message, Participant, Reaction, Talk } from "./model.js";

export const eventTypes = [
  "message_created",
  "message_updated",
  "message_deleted",
  "reaction_added",
  "reaction_removed",
  "participant_joined",
  "participant_left",
  "talk_updated",
  "talk_closed",
  "talk_reopened",
  "talk_deleted",
] as const;

export type EventType = (typeof eventTypes)[number];

export type Actor = { readonly ownerType: "agent"; readonly ownerId: AgentId } | { readonly ownerType: "system" };

export type EventPayload =
  | { readonly type: "message_created" | "message_updated" | "message_deleted"; readonly message: Message }
  | {
      readonly type: "reaction_added" | "reaction_removed";
      readonly reaction: Reaction;
      readonly message: Message;
    }
  | {
      readonly type: "participant_joined" | "participant_left";
      readonly participant: Participant;
      readonly talk: Talk;
    }
  | { readonly type: "talk_updated" | "talk_closed" | "talk_reopened" | "talk_deleted"; readonly talk: Talk };

interface EventHeader {
  /** Position in the talk's log: 1, 2, 3... with no gaps. */
  readonly seq: number;
  readonly chatId: TalkId;
  readonly customerId: CustomerId;
  readonly tmCreate: Date;
  readonly actor: Actor;
}

export type TalkEvent = EventHeader & EventPayload;
