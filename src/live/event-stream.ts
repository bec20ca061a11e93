/**
 * One watcher's stream over one or more talks: for each talk, the logged events after a
 * starting seq and then the live ones, strictly in seq order with no gap and no duplicate,
 * however replay and live delivery overlap.
 *
 * The stream pushes to an outlet (the socket's writer, through the watch rules): a live event
 * that finds the stream caught up and its outlet writable is handed over at once, in the
 * feed's dispatch, with no queue, promise or generator in between. Otherwise it waits in the
 * stream's queue while a replay reads the log or the outlet's buffer is full. Memory is
 * bounded: a stream more than `maxQueued` events behind is cut off with ResourceExhausted.
 */
import { Canceled, DomainError, OutOfRange, ResourceExhausted } from "../domain/model/errors.js";
import type { TalkEvent } from "../domain/model/events.js";
import type { CustomerId, TalkId } from "../domain/model/ids.js";
import type { EventLog } from "../events/event-log.js";
import type { TalkFeeds } from "./talk-feeds.js";

export type StreamItem = { readonly kind: "event"; readonly event: TalkEvent } | { readonly kind: "heartbeat" };

type Queued =
  | { readonly kind: "event"; readonly event: TalkEvent }
  | { readonly kind: "replay"; readonly talkId: TalkId; readonly upTo: number };

/** Where a stream's events go; each answers false when it can take no more until `resume()`. */
export interface StreamOutlet {
  event(event: TalkEvent): boolean;
  /** Nothing went out for a heartbeat interval. */
  heartbeat(): boolean;
}

interface Followed {
  /** The seq of the last event handed to the outlet for the talk. */
  delivered: number;
  detach: () => void;
}

export interface EventStreamOptions {
  readonly maxQueued: number;
  /** A heartbeat goes out when nothing else went out for this long (between one and two intervals). */
  readonly heartbeatMs: number;
  /** Ends the stream and detaches it from its feeds at once. */
  readonly signal: AbortSignal;
  /** Told when the stream fails (too far behind, a replay that failed), before anything else. */
  readonly onFailure?: (error: unknown) => void;
}

const replayPage = 200;

/** The error an aborted signal stands for: our own reasons are domain errors; anything else is the client leaving. */
const reasonOf = (signal: AbortSignal): DomainError =>
  signal.reason instanceof DomainError ? signal.reason : new Canceled("the stream was cancelled");

export class EventStream {
  readonly #queue: Queued[] = [];
  #queuedEvents = 0;
  readonly #followed = new Map<TalkId, Followed>();
  #failure: { error: unknown } | undefined;
  #outlet: StreamOutlet | undefined;
  /** The outlet answered false: nothing more goes out until resume(). */
  #blocked = false;
  /** A pump (replay or queue drain) is running. */
  #pumping = false;
  /** Something went out since the last heartbeat tick. */
  #active = false;
  #heartbeats: NodeJS.Timeout | undefined;
  #writable: (() => void) | undefined;
  readonly #ended: Promise<never>;
  #endWith: (error: unknown) => void = () => undefined;

  constructor(
    private readonly feeds: TalkFeeds,
    private readonly log: EventLog,
    private readonly options: EventStreamOptions,
  ) {
    this.#ended = new Promise<never>((_, reject) => (this.#endWith = reject));
    // Whoever starts the stream hears of its end; one that never does must not see an unhandled rejection.
    this.#ended.catch(() => undefined);
    // The feeds are left when the signal aborts, not when the outlet next drains: a stream
    // stuck on a dead socket may never drain again.
    if (options.signal.aborted) this.#end(reasonOf(options.signal));
    else options.signal.addEventListener("abort", () => this.#end(reasonOf(options.signal)), { once: true });
  }

  /** Follows a talk from `afterSeq` on; following a talk already followed changes nothing. */
  async follow(customerId: CustomerId, talkId: TalkId, afterSeq: number): Promise<void> {
    if (this.#followed.has(talkId) || this.#failure !== undefined || this.options.signal.aborted) return;
    const followed: Followed = { delivered: afterSeq, detach: () => undefined };
    this.#followed.set(talkId, followed);
    const { head, detach } = await this.feeds.attach(customerId, talkId, (event) => this.#push(event));
    if (this.#followed.get(talkId) !== followed) return detach();
    followed.detach = detach;
    // What the log has up to the feed's head is replayed, in its turn.
    if (head > afterSeq) {
      this.#queue.push({ kind: "replay", talkId, upTo: head });
      this.#kick();
    }
  }

  /** Stops following a talk. */
  unfollow(talkId: TalkId): void {
    this.#followed.get(talkId)?.detach();
    this.#followed.delete(talkId);
  }

  /** The seq of the last event handed over for a talk (its starting seq before any). */
  delivered(talkId: TalkId): number | undefined {
    return this.#followed.get(talkId)?.delivered;
  }

  /**
   * Starts pushing to `outlet` (`blocked`: not before the first resume()). The returned
   * promise rejects with the reason the stream ends: its signal's reason, or its failure.
   */
  start(outlet: StreamOutlet, blocked = false): Promise<never> {
    this.#outlet = outlet;
    this.#blocked = blocked;
    if (!this.#isEnded()) {
      this.#heartbeats = setInterval(() => this.#tick(), this.options.heartbeatMs);
      this.#kick();
    }
    return this.#ended;
  }

  /** The outlet can take more. */
  resume(): void {
    this.#blocked = false;
    const writable = this.#writable;
    this.#writable = undefined;
    if (writable !== undefined) writable();
    else this.#kick();
  }

  /** The items, pulled one at a time; ends only by throwing (the signal's reason, or a failure). */
  async *items(): AsyncGenerator<StreamItem> {
    let next: StreamItem | undefined;
    let wake: (() => void) | undefined;
    const take = (item: StreamItem) => {
      next = item;
      wake?.();
      return false;
    };
    const ended = this.start({ event: (event) => take({ kind: "event", event }), heartbeat: () => take({ kind: "heartbeat" }) }, true);
    ended.catch(() => wake?.());
    try {
      for (;;) {
        this.#throwIfEnded();
        if (next === undefined) {
          const arrived = new Promise<void>((resolve) => (wake = resolve));
          this.resume();
          await arrived;
          wake = undefined;
        }
        this.#throwIfEnded();
        const item = next;
        next = undefined;
        if (item !== undefined) yield item;
      }
    } finally {
      this.close();
    }
  }

  #push(event: TalkEvent): void {
    if (this.#isEnded()) return;
    if (!this.#pumping && !this.#blocked && this.#queue.length === 0 && this.#outlet !== undefined) {
      const followed = this.#followed.get(event.chatId);
      if (followed !== undefined && event.seq === followed.delivered + 1) {
        this.#deliver(followed, event);
        return;
      }
    }
    if (this.#queuedEvents >= this.options.maxQueued) {
      this.#fail(
        new ResourceExhausted(`the stream fell more than ${this.options.maxQueued} events behind; resume from the last seq received`),
      );
      return;
    }
    this.#queue.push({ kind: "event", event });
    this.#queuedEvents++;
    this.#kick();
  }

  #deliver(followed: Followed, event: TalkEvent): void {
    followed.delivered = event.seq;
    this.#active = true;
    if (!(this.#outlet as StreamOutlet).event(event)) this.#blocked = true;
  }

  #kick(): void {
    if (this.#pumping || this.#blocked || this.#outlet === undefined || this.#queue.length === 0 || this.#isEnded()) return;
    this.#pumping = true;
    this.#pump().catch((error: unknown) => {
      this.#pumping = false;
      this.#fail(error);
    });
  }

  /**
   * Hands over what is queued, replaying from the log where the stream is behind its feed.
   * `#pumping` is cleared in the same turn as the last look at the queue: an event pushed
   * after that takes the direct path or starts a pump of its own.
   */
  async #pump(): Promise<void> {
    for (;;) {
      const item = this.#isEnded() || this.#blocked ? undefined : this.#queue.shift();
      if (item === undefined) {
        this.#pumping = false;
        return;
      }
      if (item.kind === "event") this.#queuedEvents--;
      const talkId = item.kind === "event" ? item.event.chatId : item.talkId;
      const followed = this.#followed.get(talkId);
      if (followed === undefined) continue;
      const upTo = item.kind === "event" ? item.event.seq - 1 : item.upTo;
      if (followed.delivered < upTo) await this.#replay(talkId, followed, upTo);
      if (item.kind === "event" && item.event.seq === followed.delivered + 1 && this.#followed.get(talkId) === followed) {
        if (this.#blocked) await this.#whenWritable();
        if (this.#isEnded() || this.#followed.get(talkId) !== followed) continue;
        this.#deliver(followed, item.event);
      }
    }
  }

  /** Hands over a talk's logged events after what was delivered, up to `upTo`. */
  async #replay(talkId: TalkId, followed: Followed, upTo: number): Promise<void> {
    while (followed.delivered < upTo) {
      if (this.#blocked) await this.#whenWritable();
      // A stream that ended, or left the talk, reads no further page.
      if (this.#isEnded() || this.#followed.get(talkId) !== followed) return;
      const page = await this.log.read(talkId, followed.delivered, Math.min(replayPage, upTo - followed.delivered));
      if (this.#isEnded() || this.#followed.get(talkId) !== followed) return;
      if (page[0]?.seq !== followed.delivered + 1) {
        throw new OutOfRange(`events after seq ${followed.delivered} of talk ${talkId} are no longer retained; resync with ListMessages`);
      }
      for (const event of page) {
        if (this.#blocked) await this.#whenWritable();
        if (this.#isEnded() || this.#followed.get(talkId) !== followed) return;
        this.#deliver(followed, event);
      }
    }
  }

  #whenWritable(): Promise<void> {
    return new Promise((resolve) => (this.#writable = resolve));
  }

  #tick(): void {
    const active = this.#active;
    this.#active = false;
    if (active || this.#blocked || this.#isEnded()) return;
    if (!(this.#outlet as StreamOutlet).heartbeat()) this.#blocked = true;
  }

  #fail(error: unknown): void {
    if (this.#isEnded()) return;
    this.#failure = { error };
    this.options.onFailure?.(error);
    this.#end(error);
  }

  #isEnded(): boolean {
    return this.#failure !== undefined || this.options.signal.aborted;
  }

  #throwIfEnded(): void {
    if (this.#failure !== undefined) throw this.#failure.error;
    if (this.options.signal.aborted) throw reasonOf(this.options.signal);
  }

  #end(error: unknown): void {
    this.#queue.length = 0;
    this.#queuedEvents = 0;
    this.close();
    this.#endWith(this.#failure?.error ?? error);
    // A pump waiting for the outlet goes on, finds the stream ended, and stops.
    const writable = this.#writable;
    this.#writable = undefined;
    writable?.();
  }

  /** Detaches from every feed and stops the heartbeats. */
  close(): void {
    clearInterval(this.#heartbeats);
    for (const followed of this.#followed.values()) followed.detach();
    this.#followed.clear();
  }
}
