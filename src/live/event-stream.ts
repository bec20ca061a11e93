/**
 * One watcher's stream over one or more talks: for each talk, the logged events after a
 * starting seq and then the live ones, strictly in seq order with no gap and no duplicate,
 * however replay and live delivery overlap. Memory is bounded: a consumer that falls more
 * than `maxQueued` events behind is cut off with ResourceExhausted.
 */
import { Canceled, DomainError, OutOfRange, ResourceExhausted } from "../domain/errors.js";
import type { TalkEvent } from "../domain/events.js";
import type { CustomerId, TalkId } from "../domain/ids.js";
import type { EventLog } from "../events/event-log.js";
import type { TalkFeeds } from "./talk-feeds.js";

export type StreamItem = { readonly kind: "event"; readonly event: TalkEvent } | { readonly kind: "heartbeat" };

type Queued = { readonly kind: "event"; readonly event: TalkEvent } | { readonly kind: "replay"; readonly talkId: TalkId; readonly upTo: number };

interface Followed {
  /** The seq of the last event yielded for the talk. */
  delivered: number;
  detach: () => void;
}

export interface EventStreamOptions {
  readonly maxQueued: number;
  /** A heartbeat is yielded after this long without an event. */
  readonly heartbeatMs: number;
  /** Ends the stream and detaches it from its feeds at once; a DomainError reason is thrown to the consumer. */
  readonly signal: AbortSignal;
  /** Told when the stream fails (a consumer too far behind), before the consumer hears of it. */
  readonly onFailure?: (error: DomainError) => void;
}

const replayPage = 200;

export class EventStream {
  readonly #queue: Queued[] = [];
  #queuedEvents = 0;
  readonly #followed = new Map<TalkId, Followed>();
  #failure: DomainError | undefined;
  #wake: (() => void) | undefined;

  constructor(
    private readonly feeds: TalkFeeds,
    private readonly log: EventLog,
    private readonly options: EventStreamOptions,
  ) {
    // The feeds are left when the signal aborts, not when the consumer next pulls: a consumer
    // stuck on a dead socket may never pull again.
    options.signal.addEventListener(
      "abort",
      () => {
        this.close();
        this.#wakeUp();
      },
      { once: true },
    );
  }

  /** Follows a talk from `afterSeq` on; following a talk already followed changes nothing. */
  async follow(customerId: CustomerId, talkId: TalkId, afterSeq: number): Promise<void> {
    if (this.#followed.has(talkId) || this.#failure !== undefined || this.options.signal.aborted) return;
    const followed: Followed = { delivered: afterSeq, detach: () => undefined };
    this.#followed.set(talkId, followed);
    const { head, detach } = await this.feeds.attach(customerId, talkId, (event) => this.#push(event));
    if (this.#followed.get(talkId) !== followed) return detach();
    followed.detach = detach;
    // What the log has up to the feed's head is replayed by the consumer, in its turn.
    if (head > afterSeq) {
      this.#queue.push({ kind: "replay", talkId, upTo: head });
      this.#wakeUp();
    }
  }

  /** Stops following a talk. */
  unfollow(talkId: TalkId): void {
    this.#followed.get(talkId)?.detach();
    this.#followed.delete(talkId);
  }

  /** The seq of the last event yielded for a talk (its starting seq before any). */
  delivered(talkId: TalkId): number | undefined {
    return this.#followed.get(talkId)?.delivered;
  }

  /** The items, in order; ends only by throwing (the signal's reason, or a failure). */
  async *items(): AsyncGenerator<StreamItem> {
    try {
      for (;;) {
        this.#throwIfEnded();
        const item = this.#queue.shift();
        if (item === undefined) {
          if (!(await this.#sleep())) yield { kind: "heartbeat" };
          continue;
        }
        if (item.kind === "event") this.#queuedEvents--;
        const talkId = item.kind === "event" ? item.event.chatId : item.talkId;
        const followed = this.#followed.get(talkId);
        if (followed === undefined) continue;
        const upTo = item.kind === "event" ? item.event.seq - 1 : item.upTo;
        if (followed.delivered < upTo) yield* this.#replay(talkId, followed, upTo);
        if (item.kind === "event" && item.event.seq === followed.delivered + 1 && this.#followed.get(talkId) === followed) {
          followed.delivered = item.event.seq;
          yield item;
        }
      }
    } finally {
      this.close();
    }
  }

  /** Yields a talk's logged events after what was delivered, up to `upTo`. */
  async *#replay(talkId: TalkId, followed: Followed, upTo: number): AsyncGenerator<StreamItem> {
    while (followed.delivered < upTo) {
      // A stream that ended reads no further page.
      this.#throwIfEnded();
      const page = await this.log.read(talkId, followed.delivered, Math.min(replayPage, upTo - followed.delivered));
      if (page[0]?.seq !== followed.delivered + 1) {
        throw new OutOfRange(
          `events after seq ${followed.delivered} of talk ${talkId} are no longer retained; resync with ListMessages`,
        );
      }
      for (const event of page) {
        this.#throwIfEnded();
        if (this.#followed.get(talkId) !== followed) return;
        followed.delivered = event.seq;
        yield { kind: "event", event };
      }
    }
  }

  #push(event: TalkEvent): void {
    if (this.#failure !== undefined) return;
    if (this.#queuedEvents >= this.options.maxQueued) {
      this.#fail(
        new ResourceExhausted(
          `the stream fell more than ${this.options.maxQueued} events behind; resume from the last seq received`,
        ),
      );
      return;
    }
    this.#queue.push({ kind: "event", event });
    this.#queuedEvents++;
    this.#wakeUp();
  }

  #fail(error: DomainError): void {
    this.#failure = error;
    this.#queue.length = 0;
    this.#queuedEvents = 0;
    this.close();
    this.options.onFailure?.(error);
    this.#wakeUp();
  }

  #throwIfEnded(): void {
    if (this.#failure !== undefined) throw this.#failure;
    const { signal } = this.options;
    // Our own reasons (shutdown, limits) are domain errors; anything else is the client leaving.
    if (signal.aborted) throw signal.reason instanceof DomainError ? signal.reason : new Canceled("the stream was cancelled");
  }

  #wakeUp(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** Waits for an item or the end; false when the heartbeat interval passed first. */
  #sleep(): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#wake = undefined;
        resolve(false);
      }, this.options.heartbeatMs);
      this.#wake = () => {
        clearTimeout(timer);
        resolve(true);
      };
    });
  }

  /** Detaches from every feed. */
  close(): void {
    for (const followed of this.#followed.values()) followed.detach();
    this.#followed.clear();
  }
}
