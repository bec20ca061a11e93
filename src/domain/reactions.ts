/** Reactions: participants add and remove their own emoji on a talk's messages. */
import type { Executor } from "../store/database.js";
import { countReactions, deleteReaction, findMessage, insertReaction, saveMessage } from "../store/message-store.js";
import type { DomainDeps } from "./deps.js";
import { FailedPrecondition, NotFound, ResourceExhausted } from "./errors.js";
import { limits } from "./limits.js";
import type { MessageId } from "./ids.js";
import type { Identity } from "./identity.js";
import { changeMessage } from "./messages.js";
import type { Message, Reaction } from "./model.js";
import type { TalkChange } from "./talk-change.js";
import * as validate from "./validate.js";

type ReactionEdit = (trx: Executor, messageId: MessageId, reaction: Reaction) => Promise<Reaction | null>;

/** Applies one reaction edit; a no-op (already there / not there) returns the message unchanged. */
async function editReaction(
  deps: DomainDeps,
  caller: Identity,
  input: { messageId: string; emoji: string },
  type: "reaction_added" | "reaction_removed",
  edit: ReactionEdit,
): Promise<Message> {
  const id = validate.requireId<MessageId>("message_id", input.messageId);
  const emoji = validate.emoji("emoji", input.emoji);
  await deps.writeLimits.take(caller, "reactions");
  return changeMessage(deps, caller, id, async (trx, change: TalkChange, message) => {
    change.requireActive();
    if (message.tmDelete !== null) throw new FailedPrecondition("the message was deleted");
    const reaction = await edit(trx, id, { emoji, ownerType: "agent", ownerId: caller.agentId, tmCreate: change.now });
    if (reaction === null) return message;
    await saveMessage(trx, { ...message, tmUpdate: change.now });
    const after = await findMessage(trx, caller.customerId, id);
    if (after === null) throw new NotFound("message", id);
    change.record({ type, reaction, message: after });
    return after;
  });
}

/** Adds the caller's emoji to a message; the same emoji again is a no-op. */
export async function addReaction(deps: DomainDeps, caller: Identity, input: { messageId: string; emoji: string }): Promise<Message> {
  return editReaction(deps, caller, input, "reaction_added", async (trx, messageId, reaction) => {
    if (!(await insertReaction(trx, messageId, reaction))) return null;
    // Counted under the talk's lock, so concurrent adds cannot pass the limit together; the
    // transaction's rollback takes the insert back.
    if ((await countReactions(trx, messageId)) > limits.maxReactionsPerMessage) {
      throw new ResourceExhausted(`a message takes at most ${limits.maxReactionsPerMessage} reactions`);
    }
    return reaction;
  });
}

/** Removes the caller's own emoji from a message; one that is not there is a no-op. */
export async function removeReaction(
  deps: DomainDeps,
  caller: Identity,
  input: { messageId: string; emoji: string },
): Promise<Message> {
  return editReaction(deps, caller, input, "reaction_removed", (trx, messageId, reaction) =>
    deleteReaction(trx, messageId, reaction.ownerId, reaction.emoji),
  );
}
