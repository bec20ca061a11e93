/**
 * The resume position of an agent's feed, as an opaque token: every event written before the
 * watermark `w` was delivered, and for the talks in `s`, every event up to the given seq.
 * Entries older than the watermark are folded into it, which keeps the token small; the
 * margin below the present covers transactions that commit after their events' time.
 */
import { InvalidArgument } from "../domain/model/errors.js";
import { isUuid, type TalkId } from "../domain/model/ids.js";

/** Longest time between an event's tm_create and its commit that resuming tolerates. */
export const commitMarginMs = 60_000;
const maxEntries = 256;
/** The longest cursor a client may send (documented in docs/api.md). */
export const maxCursorLength = 64 * 1024;
/** How far another process's clock may run ahead of this one's when it made a cursor. */
const maxClockSkewMs = 60_000;

export class FeedCursor {
  private constructor(
    private watermark: number,
    private readonly seqs: Map<TalkId, { seq: number; time: number }>,
  ) {}

  /** The watermark of a cursor made at `now`. */
  static watermarkAt(now: Date): Date {
    return new Date(now.getTime() - commitMarginMs);
  }

  /** A cursor for a feed that starts now, at the given heads (a later head of a talk wins). */
  static startingAt(now: Date, heads: readonly { talkId: TalkId; lastSeq: number; tmActivity: Date }[]): FeedCursor {
    const watermark = FeedCursor.watermarkAt(now).getTime();
    const seqs = new Map<TalkId, { seq: number; time: number }>();
    for (const head of heads) {
      if (head.tmActivity.getTime() >= watermark) seqs.set(head.talkId, { seq: head.lastSeq, time: head.tmActivity.getTime() });
    }
    return new FeedCursor(watermark, seqs);
  }

  /**
   * Decodes a token from a client; InvalidArgument when it is not one, is larger than
   * maxCursorLength, or holds a position no feed can have been at (a watermark before 1970 or
   * ahead of `now` by more than the clock skew between processes, a seq that is not a
   * non-negative safe integer).
   */
  static decode(field: string, token: string, now: Date): FeedCursor {
    // Checked before decoding: a cursor is re-encoded into every response of its feed.
    if (token.length > maxCursorLength) throw new InvalidArgument(field, `must be at most ${maxCursorLength} characters`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
    } catch {
      throw new InvalidArgument(field, "is not a cursor of this feed");
    }
    if (typeof parsed !== "object" || parsed === null || !Object.hasOwn(parsed, "w") || !Object.hasOwn(parsed, "s")) {
      throw new InvalidArgument(field, "is not a cursor of this feed");
    }
    const { w, s } = parsed as { w: unknown; s: unknown };
    if (typeof w !== "number" || !Number.isSafeInteger(w) || w < 0) throw new InvalidArgument(field, "is not a cursor of this feed");
    if (w > now.getTime() + maxClockSkewMs) throw new InvalidArgument(field, "is ahead of the present: not a cursor of this feed");
    if (typeof s !== "object" || s === null || Array.isArray(s)) throw new InvalidArgument(field, "is not a cursor of this feed");
    const seqs = new Map<TalkId, { seq: number; time: number }>();
    // Object.entries reads own keys only; a "__proto__" key is not a UUID and is refused.
    for (const [talkId, seq] of Object.entries(s)) {
      if (!isUuid(talkId) || typeof seq !== "number" || !Number.isSafeInteger(seq) || seq < 0) {
        throw new InvalidArgument(field, "is not a cursor of this feed");
      }
      seqs.set(talkId as TalkId, { seq, time: w });
    }
    return new FeedCursor(w, seqs);
  }

  get watermarkTime(): Date {
    return new Date(this.watermark);
  }

  /** The last delivered seq of a talk, when the cursor names it. */
  seqOf(talkId: TalkId): number | undefined {
    return this.seqs.get(talkId)?.seq;
  }

  /** Records a delivered event. */
  advance(talkId: TalkId, seq: number, time: Date, now: Date): void {
    this.seqs.set(talkId, { seq, time: time.getTime() });
    if (this.seqs.size > maxEntries) {
      this.watermark = Math.max(this.watermark, now.getTime() - commitMarginMs);
      for (const [id, entry] of this.seqs) if (entry.time < this.watermark) this.seqs.delete(id);
    }
  }

  encode(): string {
    const s: Record<string, number> = {};
    for (const [talkId, entry] of this.seqs) s[talkId] = entry.seq;
    return Buffer.from(JSON.stringify({ w: this.watermark, s })).toString("base64url");
  }
}
