/**
 * The rules of a send, once for both ways a send is committed: the batch planner
 * (plan-batch.ts) judges from what the process knew or has just read, the locking path
 * (sendAlone in domain/messages.ts) from a read under the talk's lock. The verdict is a value;
 * each path acts on it in its own way.
 */
import { InvalidArgument, NotFound, type DomainError } from "../domain/model/errors.js";
import type { TalkId } from "../domain/model/ids.js";
import type { Message, Talk } from "../domain/model/model.js";
import { talkClosed } from "../domain/write/talk-change.js";
import type { KnownTalk } from "./known-talks.js";
import type { SendRequest } from "./send-request.js";

/** What a send is judged by besides its talk. */
export interface SendFacts {
  /** The talk of the parent message named; undefined when none is named or it does not exist. */
  readonly parentTalk: TalkId | undefined;
  /**
   * The sender's earlier message with this client_message_id: null when there is none (or the
   * send has no client_message_id), undefined when that is not known (a batch knows its own).
   */
  readonly first: Message | null | undefined;
}

export type SendVerdict =
  /** Draft and write a new message into this talk. */
  | { readonly decision: "write"; readonly talk: Talk }
  /** A retry: answered with the first message, nothing written. */
  | { readonly decision: "first"; readonly message: Message }
  /** The talk was remembered, not read, and looks closed: read it again, it may have been reopened. */
  | { readonly decision: "read again" }
  /** Only the locking path can tell: a retry into a closed talk may have a first message. */
  | { readonly decision: "lock" }
  | { readonly decision: "refuse"; readonly error: DomainError };

/** A verdict from a locked read with every fact known: never "read again" nor "lock". */
export type LockedSendVerdict = Exclude<SendVerdict, { decision: "read again" | "lock" }>;

/**
 * Judges a send. `talk` is the talk with the members known (undefined: absent or deleted);
 * `fresh` says it was read for this decision, not remembered, and only a fresh read may refuse
 * a send for a closed talk.
 */
export function judgeSend(
  talk: KnownTalk,
  request: SendRequest,
  fresh: true,
  facts: SendFacts & { readonly first: Message | null },
): LockedSendVerdict;
export function judgeSend(talk: KnownTalk | undefined, request: SendRequest, fresh: boolean, facts: SendFacts): SendVerdict;
export function judgeSend(talk: KnownTalk | undefined, request: SendRequest, fresh: boolean, facts: SendFacts): SendVerdict {
  const { caller, talkId } = request;
  if (talk === undefined || talk.talk.customerId !== caller.customerId || !talk.members.has(caller.agentId)) {
    return { decision: "refuse", error: new NotFound("talk", talkId) };
  }
  if (facts.first !== null && facts.first !== undefined) return { decision: "first", message: facts.first };
  if (talk.talk.status !== "active") {
    if (!fresh) return { decision: "read again" };
    // Not knowing whether a first message exists means the send has a client_message_id.
    if (facts.first === undefined) return { decision: "lock" };
    return { decision: "refuse", error: talkClosed() };
  }
  if (request.parentId !== null && facts.parentTalk !== talkId) {
    return { decision: "refuse", error: new InvalidArgument("parent_id", "must name a message of the same talk") };
  }
  return { decision: "write", talk: talk.talk };
}
