/** Messages: send (optionally in a thread, idempotently), read, list, edit, delete (tombstone). */
import type { Executor } from "../store/database.js";
import { findMessageByClientId, insertMessage, listVisibleMessages, messageInTalk } from "../store/message-store.js";
import { readTalkTarget, type TalkTarget } from "../store/talk-change-store.js";
import { changeAtHead } from "./write/change-at-head.js";
import type { DomainDeps } from "./deps.js";
import { AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied } from "./model/errors.js";
import type { MessageId, TalkId } from "./model/ids.js";
import type { Identity } from "./model/identity.js";
import { limits } from "./model/limits.js";
import type { Media, Message, Page } from "./model/model.js";
import { decodePageToken, encodePageToken } from "./model/page-token.js";
import { draftMessage, type NewMessage } from "./write/draft-message.js";
import { judgeSend } from "../sends/judge-send.js";
import type { SendRequest } from "../sends/send-request.js";
import type { TalkChange } from "./write/talk-change.js";
import { changeTalk } from "./write/transaction.js";
import * as validate from "./model/validate.js";
import { historyStartSeq } from "./model/visible-history.js";

/** Writes a message within a talk change and records its message_created event. */
export async function postMessage(trx: Executor, change: TalkChange, fields: NewMessage): Promise<Message> {
  const message = draftMessage(change, change.actor.ownerType === "agent" ? change.actor.ownerId : null, fields);
  // The talk lock makes the caller's idempotency check exact; the unique index backs it up.
  if ((await insertMessage(trx, message)) === null) throw new AlreadyExists("client_message_id was already used");
  change.record({ type: "message_created", message });
  return message;
}

export interface SendMessageInput {
  readonly chatId: string;
  readonly type: string;
  readonly text: string;
  readonly parentId: string;
  readonly medias: readonly Media[];
  readonly clientMessageId: string;
}

/** Sends a message; a retry with the same client_message_id returns the first message. */
export async function sendMessage(deps: DomainDeps, caller: Identity, input: SendMessageInput): Promise<Message> {
  const talkId = validate.requireId<TalkId>("chat_id", input.chatId);
  if (input.type !== "") validate.oneOf("type", input.type, ["normal"] as const);
  const text = validate.text("text", input.text, limits.maxTextLength);
  const medias = validate.medias("medias", input.medias);
  if (text.trim() === "" && medias.length === 0) throw new InvalidArgument("text", "a message needs text or medias");
  const parentId = validate.optionalId<MessageId>("parent_id", input.parentId);
  const clientMessageId =
    input.clientMessageId === "" ? null : validate.text("client_message_id", input.clientMessageId, limits.maxClientMessageIdLength);
  await deps.writeLimits.take(caller, "sends");
  return deps.sends.submit({ caller, talkId, text, medias, parentId, clientMessageId });
}

/**
 * One send in a transaction of its own, judged under the talk's lock by the batch's rules
 * (the batcher's fallback, exact where the batch cannot be: a retry's first message).
 */
export async function sendAlone(deps: DomainDeps, request: SendRequest): Promise<Message> {
  const { caller, talkId, text, medias, parentId, clientMessageId } = request;
  // changeTalk has refused a talk the caller does not take part in.
  return changeTalk(deps, caller, talkId, async (trx, change) => {
    const first = clientMessageId === null ? null : await findMessageByClientId(trx, talkId, caller.agentId, clientMessageId);
    const parentInTalk = parentId !== null && first === null && (await messageInTalk(trx, talkId, parentId));
    const verdict = judgeSend({ talk: change.talk, members: new Set([caller.agentId]) }, request, true, {
      parentTalk: parentInTalk ? talkId : undefined,
      first,
    });
    switch (verdict.decision) {
      case "first":
        return verdict.message;
      case "refuse":
        throw verdict.error;
      case "write":
        return postMessage(trx, change, { ownerType: "agent", text, medias, parentId, clientMessageId });
    }
  });
}

/** The message of a change's target, if the caller may read that far back (see historyStartSeq). */
function visibleIn(target: TalkTarget, id: MessageId): Message {
  const { message, view } = target;
  if (message === null || view.joinedSeq === null || message.seq < historyStartSeq(view.talk.type, view.joinedSeq)) {
    throw new NotFound("message", id);
  }
  return message;
}

/** One message of a talk the caller takes part in. */
export async function getMessage(deps: DomainDeps, caller: Identity, rawId: string): Promise<Message> {
  const id = validate.requireId<MessageId>("id", rawId);
  const target = await readTalkTarget(deps.db, { customerId: caller.customerId, agentId: caller.agentId, of: { messageId: id } });
  if (target === null) throw new NotFound("message", id);
  return visibleIn(target, id);
}

/**
 * Changes a message the caller can see (a newcomer to a normal talk does not see what was said
 * before it joined): one read of the message with its reactions and its talk, `work` decides,
 * one write (see change-at-head.ts).
 */
export async function changeMessage<T>(
  deps: DomainDeps,
  caller: Identity,
  id: MessageId,
  work: (change: TalkChange, message: Message) => T,
): Promise<T> {
  return changeAtHead(
    deps,
    caller,
    { of: { messageId: id } },
    () => new NotFound("message", id),
    (change, target) => work(change, visibleIn(target, id)),
  );
}

/** A talk's messages newest first, or one thread's direct replies; deleted ones as tombstones. */
export async function listMessages(
  deps: DomainDeps,
  caller: Identity,
  input: { chatId: string; parentId: string; pageSize: number; pageToken: string },
): Promise<Page<Message>> {
  const talkId = validate.requireId<TalkId>("chat_id", input.chatId);
  const parentId = validate.optionalId<MessageId>("parent_id", input.parentId);
  const size = validate.pageSize("page_size", input.pageSize);
  // A talk's main list and each of its threads are separate lists, as are other talks'.
  const list = ["messages", caller.customerId, talkId, parentId ?? ""] as const;
  const after = decodePageToken("page_token", input.pageToken, list, ["number"] as const);
  const rows = await listVisibleMessages(deps.db, caller.customerId, caller.agentId, talkId, {
    parentId,
    beforeSeq: after === null ? null : after[0],
    limit: size + 1,
  });
  if (rows === null) throw new NotFound("talk", talkId);
  const items = rows.slice(0, size);
  const last = items.at(-1);
  return { items, nextPageToken: rows.length > size && last !== undefined ? encodePageToken(list, [last.seq]) : "" };
}

function requireAuthor(caller: Identity, message: Message): void {
  if (message.ownerType !== "agent" || message.ownerId !== caller.agentId) {
    throw new PermissionDenied("only the author may change a message");
  }
}

/** Changes the text of the caller's own message in an active talk. */
export async function updateMessage(deps: DomainDeps, caller: Identity, input: { id: string; text: string }): Promise<Message> {
  const id = validate.requireId<MessageId>("id", input.id);
  const text = validate.text("text", input.text, limits.maxTextLength);
  await deps.writeLimits.take(caller, "edits");
  return changeMessage(deps, caller, id, (change, message) => {
    requireAuthor(caller, message);
    if (message.tmDelete !== null) throw new FailedPrecondition("the message was deleted");
    change.requireActive();
    if (text.trim() === "" && message.medias.length === 0) throw new InvalidArgument("text", "a message needs text or medias");
    const updated: Message = { ...message, text, tmUpdate: change.now };
    change.saveMessage(updated);
    change.record({ type: "message_updated", message: updated });
    return updated;
  });
}

/**
 * Deletes the caller's own message (soft): a tombstone with no text or medias stays so threads
 * keep their shape. Allowed in a closed talk too, so content can always be withdrawn.
 */
export async function deleteMessage(deps: DomainDeps, caller: Identity, rawId: string): Promise<Message> {
  const id = validate.requireId<MessageId>("id", rawId);
  await deps.writeLimits.take(caller, "deletes");
  return changeMessage(deps, caller, id, (change, message) => {
    requireAuthor(caller, message);
    if (message.tmDelete !== null) return message;
    const tombstone: Message = { ...message, text: "", medias: [], tmUpdate: change.now, tmDelete: change.now };
    change.saveMessage(tombstone);
    change.record({ type: "message_deleted", message: tombstone });
    return tombstone;
  });
}
