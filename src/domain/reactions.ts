/** Reactions: participants add and remove their own emoji on a talk's messages. */
import type { DomainDeps } from "./deps.js";
import { FailedPrecondition, ResourceExhausted } from "./model/errors.js";
import { limits } from "./model/limits.js";
import type { MessageId } from "./model/ids.js";
import type { Identity } from "./model/identity.js";
import { changeMessage } from "./messages.js";
import type { Message, Reaction } from "./model/model.js";
import type { TalkChange } from "./write/talk-change.js";
import * as validate from "./model/validate.js";

/**
 * Decides one reaction edit on the message as read: the message after it, or null for a no-op
 * (already there / not there).
 */
type ReactionEdit = (change: TalkChange, message: Message, mine: Reaction | undefined, emoji: string) => Message | null;

/** Applies one reaction edit; a no-op returns the message unchanged and writes nothing. */
async function editReaction(
  deps: DomainDeps,
  caller: Identity,
  input: { messageId: string; emoji: string },
  edit: ReactionEdit,
): Promise<Message> {
  const id = validate.requireId<MessageId>("message_id", input.messageId);
  const emoji = validate.emoji("emoji", input.emoji);
  await deps.writeLimits.take(caller, "reactions");
  return changeMessage(deps, caller, id, (change, message) => {
    change.requireActive();
    if (message.tmDelete !== null) throw new FailedPrecondition("the message was deleted");
    const mine = message.reactions.find((r) => r.ownerId === caller.agentId && r.emoji === emoji);
    const after = edit(change, message, mine, emoji);
    if (after === null) return message;
    change.saveMessage(after);
    return after;
  });
}

/** Reactions in the order the store lists them: oldest first, then by agent and emoji. */
function byAge(a: Reaction, b: Reaction): number {
  const age = a.tmCreate.getTime() - b.tmCreate.getTime();
  if (age !== 0) return age;
  if (a.ownerId !== b.ownerId) return a.ownerId < b.ownerId ? -1 : 1;
  return a.emoji < b.emoji ? -1 : a.emoji > b.emoji ? 1 : 0;
}

/** Adds the caller's emoji to a message; the same emoji again is a no-op. */
export async function addReaction(deps: DomainDeps, caller: Identity, input: { messageId: string; emoji: string }): Promise<Message> {
  return editReaction(deps, caller, input, (change, message, mine, emoji) => {
    if (mine !== undefined) return null;
    // The reactions were read at the head the write is conditional on, so the count is exact
    // even when many agents react at once.
    if (message.reactions.length >= limits.maxReactionsPerMessage) {
      throw new ResourceExhausted(`a message takes at most ${limits.maxReactionsPerMessage} reactions`);
    }
    const reaction: Reaction = { emoji, ownerType: "agent", ownerId: caller.agentId, tmCreate: change.now };
    const after: Message = { ...message, reactions: [...message.reactions, reaction].sort(byAge), tmUpdate: change.now };
    change.addReaction(message.id, reaction);
    change.record({ type: "reaction_added", reaction, message: after });
    return after;
  });
}

/** Removes the caller's own emoji from a message; one that is not there is a no-op. */
export async function removeReaction(deps: DomainDeps, caller: Identity, input: { messageId: string; emoji: string }): Promise<Message> {
  return editReaction(deps, caller, input, (change, message, mine) => {
    if (mine === undefined) return null;
    const after: Message = { ...message, reactions: message.reactions.filter((r) => r !== mine), tmUpdate: change.now };
    change.removeReaction(message.id, mine);
    change.record({ type: "reaction_removed", reaction: mine, message: after });
    return after;
  });
}
