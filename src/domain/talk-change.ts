/**
 * A change to one talk inside one transaction: allocates the talk's next seq numbers, keeps
 * the talk's state after the change, and collects the events to append and then publish.
 */
import { FailedPrecondition } from "./errors.js";
import type { Actor, EventPayload, TalkEvent } from "./events.js";
import type { Talk } from "./model.js";

/** The refusal of a write to a closed talk. */
export function talkClosed(): FailedPrecondition {
  return new FailedPrecondition("the talk is closed; reopen it first");
}

export class TalkChange {
  #talk: Talk;
  readonly #events: TalkEvent[] = [];
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
