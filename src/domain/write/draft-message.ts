/** A new message, drafted as the next event of a talk change. */
import { newId, type AgentId, type MessageId } from "../model/ids.js";
import type { Media, Message } from "../model/model.js";
import type { TalkChange } from "./talk-change.js";

export type NewMessage =
  | { readonly ownerType: "system"; readonly text: string }
  | {
      readonly ownerType: "agent";
      readonly text: string;
      readonly medias: readonly Media[];
      readonly parentId: MessageId | null;
      readonly clientMessageId: string | null;
    };

/**
 * A new message as the next event of a talk change: its seq is the seq its message_created
 * event will get. `sender` is the sending agent, or null for a system message.
 */
export function draftMessage(change: TalkChange, sender: AgentId | null, fields: NewMessage): Message {
  const agent = fields.ownerType === "agent" ? fields : null;
  return {
    id: newId<MessageId>(),
    customerId: change.talk.customerId,
    ownerType: fields.ownerType,
    ownerId: agent === null ? null : sender,
    chatId: change.talk.id,
    parentId: agent?.parentId ?? null,
    type: agent === null ? "system" : "normal",
    text: fields.text,
    medias: agent?.medias ?? [],
    reactions: [],
    clientMessageId: agent?.clientMessageId ?? null,
    seq: change.nextSeq,
    tmCreate: change.now,
    tmUpdate: change.now,
    tmDelete: null,
  };
}
