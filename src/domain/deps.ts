import type { EventSink } from "../events/event-sink.js";
import type { Executor } from "../store/database.js";
import type { RateLimiter } from "./rate-limiter.js";
import type { SendBatcherOptions } from "./send-batcher.js";

/** What the domain needs from the layers below it, and its per-process limits. */
export interface DomainDeps {
  readonly db: Executor;
  readonly events: EventSink;
  /** The clock; tests may pin it. */
  readonly now: () => Date;
  /** Per-agent limits on sending messages and creating talks. */
  readonly rates: { readonly sends: RateLimiter; readonly talkCreates: RateLimiter };
  /** Group commit of concurrent sends (see send-batcher.ts). */
  readonly sendBatching: SendBatcherOptions;
}
