/** Domain resources to their protobuf messages (and media back), in one place. */
import { create } from "@bufbuild/protobuf";
import { timestampFromDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import type { Actor, TalkEvent } from "../domain/model/events.js";
import type { Agent, Media, Message, Participant, Reaction, Talk } from "../domain/model/model.js";
import {
  ActorSchema,
  EventSchema,
  ParticipantChangeSchema,
  ReactionChangeSchema,
  type Event as EventProto,
} from "../../gen/talk/v1/events_pb.js";
import {
  AgentSchema,
  MediaSchema,
  MessageMetadataSchema,
  MessageSchema,
  ParticipantSchema,
  ReactionSchema,
  TalkSchema,
  type Agent as AgentProto,
  type Media as MediaProto,
  type Message as MessageProto,
  type Participant as ParticipantProto,
  type Talk as TalkProto,
} from "../../gen/talk/v1/resources_pb.js";

function time(date: Date): Timestamp;
function time(date: Date | null): Timestamp | undefined;
function time(date: Date | null): Timestamp | undefined {
  return date === null ? undefined : timestampFromDate(date);
}

export function talkToProto(talk: Talk): TalkProto {
  return create(TalkSchema, {
    id: talk.id,
    customerId: talk.customerId,
    type: talk.type,
    name: talk.name,
    detail: talk.detail,
    status: talk.status,
    memberCount: talk.memberCount,
    lastSeq: BigInt(talk.lastSeq),
    tmCreate: time(talk.tmCreate),
    tmUpdate: time(talk.tmUpdate),
    tmDelete: time(talk.tmDelete),
    tmActivity: time(talk.tmActivity),
  });
}

export function participantToProto(participant: Participant): ParticipantProto {
  return create(ParticipantSchema, {
    id: participant.id,
    customerId: participant.customerId,
    ownerType: participant.ownerType,
    ownerId: participant.ownerId,
    chatId: participant.chatId,
    ownerName: participant.ownerName,
    tmJoined: time(participant.tmJoined),
  });
}

function reactionToProto(reaction: Reaction) {
  return create(ReactionSchema, {
    emoji: reaction.emoji,
    ownerType: reaction.ownerType,
    ownerId: reaction.ownerId,
    tmCreate: time(reaction.tmCreate),
  });
}

export function messageToProto(message: Message): MessageProto {
  return create(MessageSchema, {
    id: message.id,
    customerId: message.customerId,
    ownerType: message.ownerType,
    ownerId: message.ownerId ?? "",
    chatId: message.chatId,
    parentId: message.parentId ?? "",
    type: message.type,
    text: message.text,
    medias: message.medias.map((media) => create(MediaSchema, media)),
    metadata: create(MessageMetadataSchema, { reactions: message.reactions.map(reactionToProto) }),
    clientMessageId: message.clientMessageId ?? "",
    seq: BigInt(message.seq),
    tmCreate: time(message.tmCreate),
    tmUpdate: time(message.tmUpdate),
    tmDelete: time(message.tmDelete),
  });
}

export function mediaFromProto(media: MediaProto): Media {
  return { type: media.type, url: media.url, name: media.name };
}

export function agentToProto(agent: Agent): AgentProto {
  return create(AgentSchema, {
    id: agent.id,
    customerId: agent.customerId,
    name: agent.name,
    role: agent.role,
    tmCreate: time(agent.tmCreate),
    tmUpdate: time(agent.tmUpdate),
  });
}

function actorToProto(actor: Actor) {
  return create(ActorSchema, { ownerType: actor.ownerType, ownerId: actor.ownerType === "agent" ? actor.ownerId : "" });
}

function reactionChange(event: { reaction: Reaction; message: Message }) {
  return create(ReactionChangeSchema, { reaction: reactionToProto(event.reaction), message: messageToProto(event.message) });
}

function participantChange(event: { participant: Participant; talk: Talk }) {
  return create(ParticipantChangeSchema, { participant: participantToProto(event.participant), talk: talkToProto(event.talk) });
}

function payloadOf(event: TalkEvent): EventProto["payload"] {
  switch (event.type) {
    case "message_created":
      return { case: "messageCreated", value: messageToProto(event.message) };
    case "message_updated":
      return { case: "messageUpdated", value: messageToProto(event.message) };
    case "message_deleted":
      return { case: "messageDeleted", value: messageToProto(event.message) };
    case "reaction_added":
      return { case: "reactionAdded", value: reactionChange(event) };
    case "reaction_removed":
      return { case: "reactionRemoved", value: reactionChange(event) };
    case "participant_joined":
      return { case: "participantJoined", value: participantChange(event) };
    case "participant_left":
      return { case: "participantLeft", value: participantChange(event) };
    case "talk_updated":
      return { case: "talkUpdated", value: talkToProto(event.talk) };
    case "talk_closed":
      return { case: "talkClosed", value: talkToProto(event.talk) };
    case "talk_reopened":
      return { case: "talkReopened", value: talkToProto(event.talk) };
    case "talk_deleted":
      return { case: "talkDeleted", value: talkToProto(event.talk) };
    default: {
      const unreachable: never = event;
      throw new Error(`unmapped event ${JSON.stringify(unreachable)}`);
    }
  }
}

export function eventToProto(event: TalkEvent): EventProto {
  return create(EventSchema, {
    seq: BigInt(event.seq),
    type: event.type,
    chatId: event.chatId,
    customerId: event.customerId,
    tmCreate: time(event.tmCreate),
    actor: actorToProto(event.actor),
    payload: payloadOf(event),
  });
}
