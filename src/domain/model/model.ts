/**
 * The domain's resources as the rules see them. Times are Dates; "absent" is null.
 */
import type { AgentId, CustomerId, MessageId, ParticipantId, TalkId } from "./ids.js";
import type { Role } from "./identity.js";

export type TalkType = "normal" | "group";
export type TalkStatus = "active" | "closed";

export interface Talk {
  readonly id: TalkId;
  readonly customerId: CustomerId;
  readonly type: TalkType;
  readonly name: string;
  readonly detail: string;
  readonly status: TalkStatus;
  readonly memberCount: number;
  readonly lastSeq: number;
  readonly tmCreate: Date;
  readonly tmUpdate: Date;
  readonly tmDelete: Date | null;
  readonly tmActivity: Date;
}

export interface Participant {
  readonly id: ParticipantId;
  readonly customerId: CustomerId;
  readonly ownerType: "agent";
  readonly ownerId: AgentId;
  readonly chatId: TalkId;
  readonly ownerName: string;
  /** The seq of the talk's participant_joined event for this membership. */
  readonly joinedSeq: number;
  readonly tmJoined: Date;
}

export interface Media {
  readonly type: string;
  readonly url: string;
  readonly name: string;
}

export interface Reaction {
  readonly emoji: string;
  readonly ownerType: "agent";
  readonly ownerId: AgentId;
  readonly tmCreate: Date;
}

export type MessageType = "normal" | "system";
export type OwnerType = "agent" | "system";

export interface Message {
  readonly id: MessageId;
  readonly customerId: CustomerId;
  readonly ownerType: OwnerType;
  /** null for system messages. */
  readonly ownerId: AgentId | null;
  readonly chatId: TalkId;
  readonly parentId: MessageId | null;
  readonly type: MessageType;
  readonly text: string;
  readonly medias: readonly Media[];
  readonly reactions: readonly Reaction[];
  readonly clientMessageId: string | null;
  readonly seq: number;
  readonly tmCreate: Date;
  readonly tmUpdate: Date;
  readonly tmDelete: Date | null;
}

export interface Agent {
  readonly id: AgentId;
  readonly customerId: CustomerId;
  readonly name: string;
  readonly role: Role;
  readonly tmCreate: Date;
  readonly tmUpdate: Date;
  readonly tmDelete: Date | null;
}

/** One page of a keyset-paginated list; nextPageToken is "" on the last page. */
export interface Page<T> {
  readonly items: readonly T[];
  readonly nextPageToken: string;
}
