/**
 * Per-agent rate limits as token buckets, kept in this process: an agent gets `burst` actions
 * at once and `perSecond` more each second. With N processes behind a balancer, an agent can
 * reach N times the rate; the limits protect each process, not a global quota.
 */
import { ResourceExhausted } from "./errors.js";
import type { AgentId } from "./ids.js";

export interface Rate {
  /** Sustained actions per second; 0 turns the limit off. */
  readonly perSecond: number;
  /** Actions allowed at once after a quiet period. */
  readonly burst: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class RateLimiter {
  readonly #buckets = new Map<AgentId, Bucket>();

  constructor(
    private readonly what: string,
    private readonly rate: Rate,
    private readonly clock: () => number = Date.now,
  ) {}

  /** Takes one action's token, or throws ResourceExhausted saying when to retry. */
  take(agentId: AgentId): void {
    const { perSecond, burst } = this.rate;
    if (perSecond <= 0) return;
    const now = this.clock();
    const bucket = this.#buckets.get(agentId) ?? { tokens: burst, at: now };
    bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.at) / 1000) * perSecond);
    bucket.at = now;
    if (bucket.tokens < 1) {
      this.#buckets.set(agentId, bucket);
      const retryAfterMs = Math.ceil(((1 - bucket.tokens) / perSecond) * 1000);
      throw new ResourceExhausted(`too many ${this.what}; retry in ${retryAfterMs} ms`, retryAfterMs);
    }
    bucket.tokens -= 1;
    this.#buckets.set(agentId, bucket);
    // Full buckets carry no state worth keeping; drop them now and then to bound memory.
    if (this.#buckets.size > 100_000) {
      for (const [id, b] of this.#buckets) if (b.tokens + ((now - b.at) / 1000) * perSecond >= burst) this.#buckets.delete(id);
    }
  }
}
