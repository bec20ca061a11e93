/**
 * Per-agent rate limits on writes, one token bucket per (customer, agent, class of write): an
 * agent gets `burst` writes of a class at once and `perSecond` more each second. The buckets
 * live in the database, so every process behind a balancer draws on the same budget.
 *
 * Takes made while a statement is out go together in the next one (one round trip for many
 * writes and agents, as sends are batched), and a process that was just refused remembers when
 * the bucket will have a token again and refuses until then without a round trip: other
 * processes can only take tokens, never add them, so that answer is never too strict.
 */
import { ResourceExhausted } from "../model/errors.js";
import type { AgentId, CustomerId } from "../model/ids.js";
import type { Identity } from "../model/identity.js";

/** The classes of write, each with its own budget. */
export const writeClasses = ["sends", "talkCreates", "participants", "reactions", "edits", "deletes", "talkStatus", "agentAdmin"] as const;
export type WriteClass = (typeof writeClasses)[number];

/** What a refusal calls the writes of each class. */
const described: Readonly<Record<WriteClass, string>> = {
  sends: "messages",
  talkCreates: "new talks",
  participants: "participant changes",
  reactions: "reaction changes",
  edits: "edits",
  deletes: "deletes",
  talkStatus: "closes and reopens",
  agentAdmin: "agent directory changes",
};

export interface Rate {
  /** Sustained writes per second (fractions allowed); 0 turns the limit off. */
  readonly perSecond: number;
  /** Writes allowed at once after a quiet period. */
  readonly burst: number;
}

/** Tokens wanted from one bucket. */
export interface TokenRequest {
  readonly customerId: CustomerId;
  readonly agentId: AgentId;
  readonly writeClass: WriteClass;
  readonly count: number;
  readonly rate: Rate;
}

/** What one bucket gave: `granted` of the tokens asked for, and the tokens left after. */
export interface TokenGrant {
  readonly granted: number;
  readonly left: number;
}

/** Takes tokens from shared buckets; one grant per request, in the requests' order. */
export type TakeTokens = (requests: readonly TokenRequest[]) => Promise<readonly TokenGrant[]>;

interface Waiting {
  readonly request: Omit<TokenRequest, "count">;
  readonly waiters: { resolve(): void; reject(error: unknown): void }[];
}

/** Buckets in one statement at most; more wait for the next. */
const maxBucketsPerTake = 500;

/** Refusals remembered at most; expired ones are dropped past this. */
const maxRemembered = 100_000;

/** The process's door to the shared buckets: `take` before every write. */
export class WriteLimits {
  #waiting = new Map<string, Waiting>();
  #taking = false;
  readonly #refusedUntil = new Map<string, number>();

  constructor(
    private readonly rates: Readonly<Record<WriteClass, Rate>>,
    private readonly takeTokens: TakeTokens,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Whether any class is limited (else there is nothing to keep or prune). */
  get enabled(): boolean {
    return writeClasses.some((c) => this.rates[c].perSecond > 0);
  }

  /** Takes a token for one write of the caller, or rejects with ResourceExhausted saying when to retry. */
  async take(caller: Identity, writeClass: WriteClass): Promise<void> {
    const rate = this.rates[writeClass];
    if (rate.perSecond <= 0) return;
    const key = `${caller.customerId}\n${caller.agentId}\n${writeClass}`;
    const until = this.#refusedUntil.get(key);
    if (until !== undefined) {
      const wait = until - this.clock();
      if (wait > 0) throw this.#refusal(writeClass, wait);
      this.#refusedUntil.delete(key);
    }
    return new Promise<void>((resolve, reject) => {
      let waiting = this.#waiting.get(key);
      if (waiting === undefined) {
        waiting = { request: { customerId: caller.customerId, agentId: caller.agentId, writeClass, rate }, waiters: [] };
        this.#waiting.set(key, waiting);
      }
      waiting.waiters.push({ resolve, reject });
      // Takes made in the same turn of the event loop go in the same statement.
      if (!this.#taking) queueMicrotask(() => void this.#run());
    });
  }

  async #run(): Promise<void> {
    if (this.#taking) return;
    this.#taking = true;
    try {
      while (this.#waiting.size > 0) {
        const batch: [string, Waiting][] = [];
        for (const entry of this.#waiting) {
          batch.push(entry);
          this.#waiting.delete(entry[0]);
          if (batch.length >= maxBucketsPerTake) break;
        }
        await this.#take(batch);
      }
    } finally {
      this.#taking = false;
    }
  }

  async #take(batch: readonly [string, Waiting][]): Promise<void> {
    let grants: readonly TokenGrant[];
    try {
      grants = await this.takeTokens(batch.map(([, w]) => ({ ...w.request, count: w.waiters.length })));
    } catch (error) {
      for (const [, w] of batch) for (const waiter of w.waiters) waiter.reject(error);
      return;
    }
    const now = this.clock();
    batch.forEach(([key, w], i) => {
      const grant = grants[i] ?? { granted: 0, left: 0 };
      const { perSecond } = w.request.rate;
      const wait = Math.max(1, Math.ceil(((1 - grant.left) / perSecond) * 1000));
      if (grant.granted < w.waiters.length) this.#remember(key, now + wait);
      w.waiters.forEach((waiter, n) => {
        if (n < grant.granted) waiter.resolve();
        else waiter.reject(this.#refusal(w.request.writeClass, wait));
      });
    });
  }

  #remember(key: string, until: number): void {
    if (this.#refusedUntil.size >= maxRemembered) {
      const now = this.clock();
      for (const [k, t] of this.#refusedUntil) if (t <= now) this.#refusedUntil.delete(k);
    }
    if (this.#refusedUntil.size < maxRemembered) this.#refusedUntil.set(key, until);
  }

  #refusal(writeClass: WriteClass, retryAfterMs: number): ResourceExhausted {
    const ms = Math.ceil(retryAfterMs);
    return new ResourceExhausted(`too many ${described[writeClass]}; retry in ${ms} ms`, ms);
  }
}
