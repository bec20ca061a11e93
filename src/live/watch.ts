/**
 * Live events: a talk's watchers (WatchTalk) and an agent's feed (WatchEvents).
 *
 * A stream goes through these phases (docs/events.md says more):
 * 1. open: the caller's view of the talk(s) is checked, a slot of its stream quota taken, and
 *    the stream attached to each talk's feed (talk-feeds.ts), which says the feed's head;
 * 2. replay to the head: the log's events after the stream's starting seq, read in pages;
 * 3. cut-over: live events that came during the replay wait in the stream's queue and go out
 *    after it, each seq once (event-stream.ts);
 * 4. live: an event is handed from the talk's feed straight to the stream's outlet, and from
 *    there, as bytes encoded once for every stream, to its socket (live-body.ts);
 * 5. lag cut-off: a stream whose socket does not drain and which falls more than maxQueued
 *    events behind ends with RESOURCE_EXHAUSTED; the client resumes from its last seq;
 * 6. end: the caller's own participant_left (PERMISSION_DENIED), talk_deleted (NOT_FOUND), the
 *    token expiring, the client leaving, or shutdown; the scope (watch-scope.ts) gives back
 *    what the stream held, once.
 * A heartbeat goes out after a heartbeat interval with nothing else sent, and carries only
 * what was delivered on that stream.
 */
import type { EventBus } from "../bus/bus.js";
import type { EventLog } from "../events/event-log.js";
import { EventStream } from "./event-stream.js";
import { LiveBody, type Producer } from "./live-body.js";
import type { TalkFeeds } from "./talk-feeds.js";
import { guarded } from "../store/errors.js";
import type { Departure } from "../store/departure-store.js";
import { lastSeqsBefore } from "../store/event-store.js";
import type { Membership } from "../store/participant-store.js";
import type { DomainDeps } from "../domain/deps.js";
import { Canceled, DomainError, InvalidArgument, NotFound, OutOfRange, PermissionDenied, Unauthenticated } from "../domain/model/errors.js";
import type { TalkEvent } from "../domain/model/events.js";
import { FeedCursor } from "./feed-cursor.js";
import type { TalkId } from "../domain/model/ids.js";
import type { Identity } from "../domain/model/identity.js";
import type { StreamQuota } from "../domain/stream-quota.js";
import * as validate from "../domain/model/validate.js";
import { eventVisible, historyStartSeq } from "../domain/model/visible-history.js";
import { WatchScope } from "./watch-scope.js";
import type { WatchedViews } from "./watched-views.js";
import type { FeedReads } from "./feed-reads.js";

export interface WatchDeps {
  readonly bus: EventBus;
  readonly feeds: TalkFeeds;
  /** The talk views opening WatchTalk streams need, read in batches (live/watched-views.ts). */
  readonly views: WatchedViews;
  /** The memberships and departures opening WatchEvents streams need, read in batches (live/feed-reads.ts). */
  readonly feedReads: FeedReads;
  readonly log: EventLog;
  /** Aborted when the process shuts down; its reason ends every stream. */
  readonly shutdown: AbortSignal;
  readonly maxQueued: number;
  readonly heartbeatMs: number;
  /** How often an agent's feed re-reads its talks, for joins whose bus message was lost. */
  readonly membershipCheckMs: number;
  /** How long events are kept, for the error message of a too-old after_seq. */
  readonly retentionDays: number;
  /** Told of every event a stream sends (metrics). */
  readonly onDelivered?: (event: TalkEvent) => void;
  /** Open streams per agent. */
  readonly streams: StreamQuota;
}

export type TalkWatchItem =
  | { readonly kind: "event"; readonly event: TalkEvent }
  | { readonly kind: "heartbeat"; readonly lastSeq: number };

/**
 * A stream's scope: it ends with the call's signal, the process's shutdown, or the caller's
 * token expiring; what the stream takes is released when it ends (see watch-scope.ts).
 */
function scopeFor(watch: WatchDeps, caller: Identity, signals: readonly AbortSignal[]): WatchScope {
  const scope = new WatchScope([...signals, watch.shutdown]);
  scope.endAt(caller.expiresAt, () => new Unauthenticated("the token has expired; reconnect with a new token"));
  return scope;
}

/** Takes a slot of the caller's stream quota for the scope's life; ResourceExhausted when full. */
function takeSlot(watch: WatchDeps, caller: Identity, scope: WatchScope): void {
  scope.throwIfEnded();
  scope.hold(watch.streams.acquire({ agentId: caller.agentId, customerId: caller.customerId, end: (reason) => scope.end(reason) }));
}

function streamFor(watch: WatchDeps, scope: WatchScope): EventStream {
  const stream = new EventStream(watch.feeds, watch.log, {
    maxQueued: watch.maxQueued,
    heartbeatMs: watch.heartbeatMs,
    signal: scope.signal,
    // A stream cut off for lagging gives its slot back at once.
    onFailure: (error) => {
      if (error instanceof DomainError) scope.end(error);
    },
  });
  scope.hold(() => stream.close());
  return stream;
}

/** Why a scope ends when its generator finishes by itself (its reason then reaches no one). */
const finished = (): Canceled => new Canceled("the stream ended");

/**
 * Whether an event ends the caller's view of its talk: the caller's current membership ended
 * (`membership`, when known; an older leave of a since re-added agent does not count), or the
 * talk was deleted.
 */
function endsView(caller: Identity, event: TalkEvent, membership?: string): "left" | "deleted" | undefined {
  if (
    event.type === "participant_left" &&
    event.participant.ownerId === caller.agentId &&
    (membership === undefined || event.participant.id === membership)
  ) {
    return "left";
  }
  if (event.type === "talk_deleted") return "deleted";
  return undefined;
}

/**
 * A talk's events after `afterSeq`, then live ones, for a participant. The stream ends with
 * PERMISSION_DENIED after the caller's own participant_left, and NOT_FOUND after talk_deleted.
 */
export function talkWatch(
  // biome-ignore lint/correctness/noUnusedFunctionParameters: both watch use cases take the same arguments (eventsWatch reads the clock)
  deps: DomainDeps,
  watch: WatchDeps,
  caller: Identity,
  input: { chatId: string; afterSeq: number },
  signal: AbortSignal,
): Producer<TalkWatchItem> {
  return async (outlet, stop) => {
    const talkId = validate.requireId<TalkId>("chat_id", input.chatId);
    if (!Number.isSafeInteger(input.afterSeq) || input.afterSeq < 0) throw new InvalidArgument("after_seq", "must not be negative");
    // Nothing is taken before the stream runs, and all of it is given back by the scope,
    // whichever way the stream ends.
    const scope = scopeFor(watch, caller, [signal, stop]);
    try {
      const { talk, membership, first, historyStart } = await scope.race(
        guarded(async () => {
          const view = await watch.views({ customerId: caller.customerId, talkId, agentId: caller.agentId });
          if (view === null || view.participantId === null || view.joinedSeq === null) throw new NotFound("talk", talkId);
          const historyStart = historyStartSeq(view.talk.type, view.joinedSeq);
          return { talk: view.talk, membership: view.participantId, first: view.firstRetainedSeq, historyStart };
        }),
      );
      if (input.afterSeq > talk.lastSeq) {
        throw new OutOfRange(`after_seq ${input.afterSeq} is ahead of the talk's last seq ${talk.lastSeq}`);
      }
      // A normal talk's newcomer starts at its join whatever it asks (domain/model/visible-history.ts).
      const from = Math.max(input.afterSeq, historyStart - 1);
      if (from < (first ?? talk.lastSeq + 1) - 1) {
        throw new OutOfRange(
          `events after seq ${input.afterSeq} are no longer retained (the log keeps ${watch.retentionDays} days); ` +
            `resync with ListMessages and watch from the talk's last_seq ${talk.lastSeq}`,
        );
      }
      takeSlot(watch, caller, scope);
      const stream = streamFor(watch, scope);
      await scope.race(stream.follow(caller.customerId, talkId, from));
      // A heartbeat carries the last seq delivered on this stream, never the talk's head: a
      // client that resumes from it must not skip what the replay has yet to send.
      const position = () => stream.delivered(talkId) ?? from;
      outlet.onWritable(() => stream.resume());
      // A first heartbeat at once tells the client the stream is open.
      const writable = outlet.send({ kind: "heartbeat", lastSeq: position() });
      await stream.start(
        {
          heartbeat: () => outlet.send({ kind: "heartbeat", lastSeq: position() }),
          event: (event) => {
            if (!eventVisible(event, historyStart)) return true;
            watch.onDelivered?.(event);
            const more = outlet.send({ kind: "event", event });
            const end = endsView(caller, event, membership);
            if (end === "left") scope.end(new PermissionDenied("you no longer take part in this talk"));
            if (end === "deleted") scope.end(new NotFound("talk", talkId));
            return more;
          },
        },
        !writable,
      );
    } finally {
      scope.end(finished());
    }
  };
}

/** An iterating consumer's view of a producer (the WebSocket and REST paths). */
async function* itemsOf<I>(produce: Producer<I>): AsyncGenerator<I> {
  yield* LiveBody.of(produce, { message: (item: I) => item, frame: () => new Uint8Array() });
}

/** WatchTalk's items for consumers that pull them (see talkWatch). */
export function watchTalk(
  deps: DomainDeps,
  watch: WatchDeps,
  caller: Identity,
  input: { chatId: string; afterSeq: number },
  signal: AbortSignal,
): AsyncGenerator<TalkWatchItem> {
  return itemsOf(talkWatch(deps, watch, caller, input, signal));
}

/** A departure as the head a new cursor records for its talk. */
const endedHead = (d: Departure) => ({ talkId: d.talkId, lastSeq: d.endSeq, tmActivity: d.tmEnd });

export type FeedItem =
  | { readonly kind: "event"; readonly event: TalkEvent; readonly cursor: string }
  | { readonly kind: "heartbeat"; readonly cursor: string };

/** Where an agent's feed of each talk starts, from a resume cursor (or now, without one). */
async function startSeqs(
  deps: DomainDeps,
  memberships: readonly Membership[],
  departures: readonly Departure[],
  cursor: FeedCursor | null,
): Promise<{ starts: Map<TalkId, number>; departed: Map<TalkId, Departure> }> {
  const starts = new Map<TalkId, number>();
  const departed = new Map<TalkId, Departure>();
  const sinceWatermark = new Set<TalkId>();
  for (const m of memberships) {
    const known = cursor?.seqOf(m.talkId);
    if (cursor === null || m.tmActivity < cursor.watermarkTime) starts.set(m.talkId, m.lastSeq);
    else if (known !== undefined) starts.set(m.talkId, known);
    else sinceWatermark.add(m.talkId);
  }
  // Talks left or deleted while away (no membership now): replayed up to where the view ended.
  const current = new Set(memberships.map((m) => m.talkId));
  const gone = cursor === null ? [] : departures.filter((d) => !current.has(d.talkId));
  for (const d of gone) if (cursor?.seqOf(d.talkId) === undefined) sinceWatermark.add(d.talkId);
  const before =
    cursor !== null && sinceWatermark.size > 0
      ? await lastSeqsBefore(deps.db, [...sinceWatermark], cursor.watermarkTime)
      : new Map<TalkId, number>();
  for (const talkId of sinceWatermark) if (current.has(talkId)) starts.set(talkId, before.get(talkId) ?? 0);
  // Never before the agent's own join.
  for (const m of memberships) starts.set(m.talkId, Math.max(starts.get(m.talkId) ?? m.lastSeq, m.joinedSeq - 1));
  for (const d of gone) {
    if (departed.has(d.talkId)) continue;
    const delivered = cursor?.seqOf(d.talkId) ?? before.get(d.talkId) ?? 0;
    // The first end after what was delivered (departures come in seq order per talk).
    if (d.endSeq <= delivered) continue;
    departed.set(d.talkId, d);
    starts.set(d.talkId, Math.max(delivered, d.joinedSeq - 1));
  }
  return { starts, departed };
}

/**
 * Every event of every talk the caller takes part in, including talks it joins while
 * watching; each item carries the cursor to resume after it. Without a cursor the feed starts
 * now.
 */
export function eventsWatch(
  deps: DomainDeps,
  watch: WatchDeps,
  caller: Identity,
  input: { cursor: string },
  signal: AbortSignal,
): Producer<FeedItem> {
  return async (outlet, stop) => {
    const given = input.cursor === "" ? null : FeedCursor.decode("cursor", input.cursor, deps.now());
    const scope = scopeFor(watch, caller, [signal, stop]);
    try {
      takeSlot(watch, caller, scope);
      const stream = streamFor(watch, scope);
      // The seq at which the caller's view of a talk ended: a membership re-read that raced the
      // leave must not replay what was delivered before it.
      const endedAt = new Map<TalkId, number>();
      const follow = (m: { talkId: TalkId; start: number }) =>
        stream.follow(caller.customerId, m.talkId, Math.max(m.start, endedAt.get(m.talkId) ?? 0)).catch(() => undefined);
      // Joins first, so that a join between reading the memberships and subscribing is not missed.
      scope.hold(
        watch.bus.subscribeAgent(caller.customerId, caller.agentId, (event) => {
          if (event.type === "participant_joined" && event.participant.ownerId === caller.agentId) {
            void follow({ talkId: event.chatId, start: event.seq - 1 });
          }
        }),
      );
      const recheck = setInterval(() => {
        void watch.feedReads.memberships(caller.customerId, caller.agentId).then(
          (memberships) => {
            for (const m of memberships) void follow({ talkId: m.talkId, start: m.joinedSeq - 1 });
          },
          () => undefined,
        );
      }, watch.membershipCheckMs);
      scope.hold(() => clearInterval(recheck));
      const memberships = await scope.race(watch.feedReads.memberships(caller.customerId, caller.agentId));
      const since = given?.watermarkTime ?? FeedCursor.watermarkAt(deps.now());
      const departures = await scope.race(watch.feedReads.departures(caller.customerId, caller.agentId, since));
      const { starts, departed } = await scope.race(guarded(() => startSeqs(deps, memberships, departures, given)));
      // A new cursor names the talks left since its watermark at their end, so that resuming
      // with it does not replay them.
      const cursor = given ?? FeedCursor.startingAt(deps.now(), [...departures.map(endedHead), ...memberships]);
      // Where each talk's readable history starts; a join seen on the stream comes before any
      // other event of its talk, so it sets the start for talks joined while watching.
      const historyStarts = new Map([...departed.values(), ...memberships].map((m) => [m.talkId, historyStartSeq(m.type, m.joinedSeq)]));
      for (const [talkId, start] of starts) await scope.race(stream.follow(caller.customerId, talkId, start));
      outlet.onWritable(() => stream.resume());
      const writable = outlet.send({ kind: "heartbeat", cursor: cursor.encode() });
      await stream.start(
        {
          heartbeat: () => outlet.send({ kind: "heartbeat", cursor: cursor.encode() }),
          event: (event) => {
            if (event.type === "participant_joined" && event.participant.ownerId === caller.agentId) {
              historyStarts.set(event.chatId, historyStartSeq(event.talk.type, event.participant.joinedSeq));
            }
            cursor.advance(event.chatId, event.seq, event.tmCreate, deps.now());
            if (!eventVisible(event, historyStarts.get(event.chatId) ?? 1)) return true;
            watch.onDelivered?.(event);
            const more = outlet.send({ kind: "event", event, cursor: cursor.encode() });
            if (endsView(caller, event) !== undefined) {
              endedAt.set(event.chatId, event.seq);
              stream.unfollow(event.chatId);
            }
            return more;
          },
        },
        !writable,
      );
    } finally {
      scope.end(finished());
    }
  };
}

/** WatchEvents' items for consumers that pull them (see eventsWatch). */
export function watchEvents(
  deps: DomainDeps,
  watch: WatchDeps,
  caller: Identity,
  input: { cursor: string },
  signal: AbortSignal,
): AsyncGenerator<FeedItem> {
  return itemsOf(eventsWatch(deps, watch, caller, input, signal));
}
