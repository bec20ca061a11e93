/**
 * A change to one talk: allocates the talk's next seq numbers, keeps the talk's state after
 * the change, and collects the rows to write and the events to append and then publish. It
 * decides only; the store writes what it collected in one statement (store/talk-change-store.ts).
 */
import { FailedPrecondition } from "../model/errors.js";
import type { Actor, EventPayload, TalkEvent } from "../model/events.js";
import type { MessageId } from "../model/ids.js";
import type { Message, Participant, Reaction, Talk } from "../model/model.js";

/** The rows a talk change writes besides the talk itself and its events. */
export interface TalkWrites {
  readonly newMessages: readonly Message[];
  /** Messages whose text, medias or times changed (edits, tombstones, reactions' tm_update). */
  readonly changedMessages: readonly Message[];
  readonly addedReactions: readonly { readonly messageId: MessageId; readonly reaction: Reaction }[];
  readonly removedReactions: readonly { readonly messageId: MessageId; readonly reaction: Reaction }[];
  readonly joined: readonly Participant[];
  readonly left: readonly Participant[];
}

/** The refusal of a write to a closed talk. */
export function talkClosed(): FailedPrecondition {
  return new FailedPrecondition("the talk is closed; reopen it first");
}

export class TalkChange {
  #talk: Talk;
  readonly #events: TalkEvent[] = [];
  readonly #writes = {
    newMessages: [] as Message[],
    changedMessages: [] as Message[],
    addedReactions: [] as { messageId: MessageId; reaction: Reaction }[],
    removedReactions: [] as { messageId: MessageId; reaction: Reaction }[],
    joined: [] as Participant[],
    left: [] as Participant[],
  };
  /** The new pair key (string or null); undefined while unchanged. */
  pairKey: string | null | undefined = undefined;

  /**
   * @param now the change's time; never earlier than the talk's last activity, so a talk's
   *   times never go backwards even when process clocks disagree.
   */
  constructor(
    talk: Talk,
    readonly actor: Actor,
    now: Date,
  ) {
    this.#talk = talk;
    this.now = now.getTime() < talk.tmActivity.getTime() ? talk.tmActivity : now;
  }

  readonly now: Date;

  /** The talk as it will be after the change. */
  get talk(): Talk {
    return this.#talk;
  }

  get events(): readonly TalkEvent[] {
    return this.#events;
  }

  get writes(): TalkWrites {
    return this.#writes;
  }

  /** Writes a new message (its event is recorded separately). */
  insertMessage(message: Message): void {
    this.#writes.newMessages.push(message);
  }

  /** Writes a message's new text, medias and times. */
  saveMessage(message: Message): void {
    this.#writes.changedMessages.push(message);
  }

  addReaction(messageId: MessageId, reaction: Reaction): void {
    this.#writes.addedReactions.push({ messageId, reaction });
  }

  removeReaction(messageId: MessageId, reaction: Reaction): void {
    this.#writes.removedReactions.push({ messageId, reaction });
  }

  /** Writes a new membership (its event is recorded separately). */
  insertParticipant(participant: Participant): void {
    this.#writes.joined.push(participant);
  }

  /** Deletes a membership (its event is recorded separately). */
  deleteParticipant(participant: Participant): void {
    this.#writes.left.push(participant);
  }

  /** The seq the next recorded event will get. */
  get nextSeq(): number {
    return this.#talk.lastSeq + 1;
  }

  /** A closed talk takes no messages, reactions, edits or participants. */
  requireActive(): void {
    if (this.#talk.status !== "active") throw talkClosed();
  }

  /** Changes the talk's own fields; tm_update moves to the change's time. */
  updateTalk(fields: Partial<Pick<Talk, "name" | "detail" | "status" | "memberCount" | "tmDelete">>): Talk {
    this.#talk = { ...this.#talk, ...fields, tmUpdate: this.now };
    return this.#talk;
  }

  /** Records an event with the next seq and returns it; `actor` defaults to the change's. */
  record(payload: EventPayload, actor: Actor = this.actor): TalkEvent {
    const seq = this.nextSeq;
    this.#talk = { ...this.#talk, lastSeq: seq, tmActivity: this.now };
    const event = {
      ...payload,
      seq,
      chatId: this.#talk.id,
      customerId: this.#talk.customerId,
      tmCreate: this.now,
      actor,
    } as TalkEvent;
    this.#events.push(event);
    return event;
  }
}
