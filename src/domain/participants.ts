/** Participants: who takes part in a talk. Joins and leaves write system messages. */
import { listParticipants as listRows } from "../store/participant-store.js";
import { findTalkView } from "../store/talk-store.js";
import { displayName } from "./agents.js";
import { changeAtHead } from "./write/change-at-head.js";
import type { DomainDeps } from "./deps.js";
import { draftMessage } from "./write/draft-message.js";
import { AlreadyExists, FailedPrecondition, InvalidArgument, NotFound } from "./model/errors.js";
import { newId, type AgentId, type ParticipantId, type TalkId } from "./model/ids.js";
import type { Identity } from "./model/identity.js";
import type { Participant } from "./model/model.js";
import { pairKey } from "./model/pair-key.js";
import type { TalkChange } from "./write/talk-change.js";
import * as validate from "./model/validate.js";

/** The text of the system message written when an agent joins. */
export function joinedText(name: string): string {
  return `${name} joined the conversation.`;
}

/** The text of the system message written when an agent leaves or is removed. */
export function leftText(name: string): string {
  return `${name} left the conversation.`;
}

/** Records a system message within a talk change. */
function postSystemMessage(change: TalkChange, text: string): void {
  const message = draftMessage(change, null, { ownerType: "system", text });
  change.insertMessage(message);
  change.record({ type: "message_created", message });
}

/**
 * Makes an agent a participant within a talk change: the row, the event, the system message.
 * The caller has made sure that the agent takes no part in the talk yet.
 */
export function joinTalk(change: TalkChange, agent: { readonly id: AgentId; readonly name: string }): Participant {
  const participant: Participant = {
    id: newId<ParticipantId>(),
    customerId: change.talk.customerId,
    ownerType: "agent",
    ownerId: agent.id,
    chatId: change.talk.id,
    ownerName: agent.name,
    joinedSeq: change.nextSeq,
    tmJoined: change.now,
  };
  change.insertParticipant(participant);
  const talk = change.updateTalk({ memberCount: change.talk.memberCount + 1 });
  change.record({ type: "participant_joined", participant, talk });
  postSystemMessage(change, joinedText(displayName(agent)));
  return participant;
}

export interface AddParticipantInput {
  readonly chatId: string;
  readonly agentId: string;
  readonly ownerType: string;
  readonly ownerId: string;
}

/** The agent an add request names, by agent_id or by owner_type + owner_id (the spec uses both). */
function namedAgent(input: AddParticipantInput): AgentId {
  if (input.ownerType !== "") validate.oneOf("owner_type", input.ownerType, ["agent"] as const);
  if (input.agentId !== "" && input.ownerId !== "" && input.agentId.toLowerCase() !== input.ownerId.toLowerCase()) {
    throw new InvalidArgument("owner_id", "names another agent than agent_id");
  }
  if (input.agentId === "" && input.ownerId === "") throw new InvalidArgument("agent_id", "is required (or owner_id)");
  return input.agentId !== ""
    ? validate.requireId<AgentId>("agent_id", input.agentId)
    : validate.requireId<AgentId>("owner_id", input.ownerId);
}

/** Adds an agent of the caller's customer to an active talk the caller takes part in. */
export async function addParticipant(deps: DomainDeps, caller: Identity, input: AddParticipantInput): Promise<Participant> {
  const talkId = validate.requireId<TalkId>("chat_id", input.chatId);
  const agentId = namedAgent(input);
  await deps.writeLimits.take(caller, "participants");
  const notFound = () => new NotFound("talk", talkId);
  return changeAtHead(deps, caller, { of: { talkId }, newMember: agentId, members: true }, notFound, (change, target) => {
    change.requireActive();
    const agent = target.newMember;
    if (agent === null) throw new NotFound("agent", agentId);
    if (agent.inTalk) throw new AlreadyExists(`agent ${agent.id} already takes part in the talk`);
    const participant = joinTalk(change, agent);
    if (change.talk.type === "normal") {
      if (change.talk.memberCount > 2) throw new FailedPrecondition("a normal talk has at most two participants");
      // The other one of the pair; a unique index refuses a second live talk of the same pair.
      const [other] = target.members;
      if (change.talk.memberCount === 2 && other !== undefined) change.pairKey = pairKey(other, agent.id);
    }
    return participant;
  });
}

/**
 * Removes a participant (hard delete). Any participant may leave or remove another, in a group
 * talk and, as the spec's tutorial does, in a normal one. The last one out closes the talk.
 */
export async function removeParticipant(
  deps: DomainDeps,
  caller: Identity,
  input: { chatId: string; participantId: string },
): Promise<Participant> {
  const talkId = validate.requireId<TalkId>("chat_id", input.chatId);
  const participantId = validate.requireId<ParticipantId>("participant_id", input.participantId);
  await deps.writeLimits.take(caller, "participants");
  const notFound = () => new NotFound("talk", talkId);
  return changeAtHead(deps, caller, { of: { talkId }, leaving: participantId }, notFound, (change, target) => {
    if (target.leaving === null) throw new NotFound("participant", participantId);
    const removed: Participant = { ...target.leaving, customerId: caller.customerId, ownerType: "agent", chatId: talkId };
    change.deleteParticipant(removed);
    const talk = change.updateTalk({ memberCount: change.talk.memberCount - 1 });
    // The pair no longer talks in this talk; a new normal talk of the pair may be created.
    if (talk.type === "normal") change.pairKey = null;
    change.record({ type: "participant_left", participant: removed, talk });
    postSystemMessage(change, leftText(displayName({ id: removed.ownerId, name: removed.ownerName })));
    if (change.talk.memberCount === 0 && change.talk.status === "active") {
      change.record({ type: "talk_closed", talk: change.updateTalk({ status: "closed" }) });
    }
    return removed;
  });
}

/** A talk's participants, earliest joined first. */
export async function listParticipants(deps: DomainDeps, caller: Identity, rawChatId: string): Promise<Participant[]> {
  const talkId = validate.requireId<TalkId>("chat_id", rawChatId);
  const view = await findTalkView(deps.db, caller.customerId, talkId, caller.agentId);
  if (view === null || view.participantId === null) throw new NotFound("talk", talkId);
  return listRows(deps.db, talkId);
}
