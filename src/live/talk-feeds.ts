/**
 * One feed per watched talk and process, shared by all of the process's watchers of that talk.
 * A feed turns the bus's best-effort delivery into a contiguous, ordered sequence: an event
 * past a gap first pulls the missing ones from the log, and a periodic check of the talks'
 * heads pulls a last event whose publish was lost. Work for one talk runs strictly in turn.
 */
import type { TalkEvent } from "../domain/model/events.js";
import type { CustomerId, TalkId } from "../domain/model/ids.js";
import type { EventBus, Unsubscribe } from "../bus/bus.js";
import type { EventLog } from "../events/event-log.js";
import { TurnBatch } from "./turn-batch.js";

export type FeedListener = (event: TalkEvent) => void;

const pageSize = 500;

class Feed {
  /** The seq of the last event dispatched (or the talk's head when the feed started). */
  head = 0;
  readonly listeners = new Set<FeedListener>();
  unsubscribe: Unsubscribe = () => undefined;
  #turn: Promise<unknown> = Promise.resolve();

  constructor(
    readonly talkId: TalkId,
    private readonly log: EventLog,
    private readonly onError: (error: unknown) => void,
  ) {}

  /** Runs work after all work queued before it; an error is reported and the feed goes on. */
  inTurn<T>(work: () => Promise<T> | T): Promise<T> {
    const result = this.#turn.then(work);
    this.#turn = result.catch(this.onError);
    return result;
  }

  offer(event: TalkEvent): void {
    void this.inTurn(async () => {
      if (event.seq <= this.head) return;
      if (event.seq > this.head + 1) await this.catchUp(event.seq - 1);
      if (event.seq === this.head + 1) this.#dispatch(event);
    });
  }

  /** Dispatches the log's events up to `upTo` that this feed has not dispatched yet. */
  async catchUp(upTo: number): Promise<void> {
    while (this.head < upTo) {
      const page = await this.log.read(this.talkId, this.head, Math.min(pageSize, upTo - this.head));
      if (page.length === 0) return;
      // Past a hole (events the log no longer has) too: waiting for the missing seq would spin
      // here forever; the watchers' streams find the hole and answer OUT_OF_RANGE.
      for (const event of page) if (event.seq > this.head) this.#dispatch(event);
    }
  }

  #dispatch(event: TalkEvent): void {
    this.head = event.seq;
    for (const listener of [...this.listeners]) listener(event);
  }
}

export interface TalkFeedsOptions {
  /** How often the heads of watched talks are checked for events the bus did not bring. */
  readonly gapCheckMs: number;
  readonly onError: (error: unknown) => void;
}

export class TalkFeeds {
  readonly #feeds = new Map<TalkId, Feed>();
  readonly #timer: NodeJS.Timeout;
  #sweeping = false;
  /** The heads of the feeds created in one turn, read with one query. */
  readonly #heads = new TurnBatch<TalkId, number>(async (talkIds) => {
    const heads = await this.log.heads(talkIds);
    return talkIds.map((talkId) => heads.get(talkId) ?? 0);
  });

  constructor(
    private readonly bus: EventBus,
    private readonly log: EventLog,
    private readonly options: TalkFeedsOptions,
  ) {
    this.#timer = setInterval(() => void this.sweep(), options.gapCheckMs);
    this.#timer.unref();
  }

  /** How many talks this process watches. */
  get size(): number {
    return this.#feeds.size;
  }

  /** How many listeners (one per stream and talk) the feeds have. */
  get listeners(): number {
    let count = 0;
    for (const feed of this.#feeds.values()) count += feed.listeners.size;
    return count;
  }

  /**
   * Adds a listener to a talk's feed. Resolves with the seq after which the listener gets
   * every event of the talk, in order and without gaps, and with the detach function.
   */
  async attach(customerId: CustomerId, talkId: TalkId, listener: FeedListener): Promise<{ head: number; detach: () => void }> {
    let feed = this.#feeds.get(talkId);
    if (feed === undefined) {
      const created = new Feed(talkId, this.log, this.options.onError);
      feed = created;
      this.#feeds.set(talkId, created);
      // Subscribe first, then read the head: an event published in between is either in the
      // head or arrives after it, never neither.
      created.unsubscribe = this.bus.subscribeTalk(customerId, talkId, (event) => created.offer(event));
      void created.inTurn(async () => {
        created.head = await this.#heads.get(talkId);
      });
    }
    const joined = feed;
    const head = await joined.inTurn(() => {
      joined.listeners.add(listener);
      return joined.head;
    });
    return {
      head,
      detach: () => {
        joined.listeners.delete(listener);
        if (joined.listeners.size === 0 && this.#feeds.get(talkId) === joined) {
          joined.unsubscribe();
          this.#feeds.delete(talkId);
        }
      },
    };
  }

  /** Pulls from the log every event that watched talks have and their feeds have not dispatched. */
  async sweep(): Promise<void> {
    if (this.#sweeping || this.#feeds.size === 0) return;
    this.#sweeping = true;
    try {
      const heads = await this.log.heads([...this.#feeds.keys()]);
      for (const [talkId, head] of heads) {
        const feed = this.#feeds.get(talkId);
        if (feed !== undefined && head > feed.head) void feed.inTurn(() => feed.catchUp(head));
      }
    } catch (error) {
      this.options.onError(error);
    } finally {
      this.#sweeping = false;
    }
  }

  close(): void {
    clearInterval(this.#timer);
    for (const feed of this.#feeds.values()) feed.unsubscribe();
    this.#feeds.clear();
  }
}
