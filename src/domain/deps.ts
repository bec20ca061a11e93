import type { EventSink } from "../events/event-sink.js";
import type { Executor } from "../store/database.js";
import type { Sends } from "../sends/send-request.js";
import type { WriteLimits } from "./write/write-limits.js";

/** What the domain needs from the layers below it, and its per-process limits. */
export interface DomainDeps {
  readonly db: Executor;
  readonly events: EventSink;
  /** The clock; tests may pin it. */
  readonly now: () => Date;
  /** Per-agent rate limits on every class of write; each write use case takes its token first. */
  readonly writeLimits: WriteLimits;
  /** Takes validated sends: the group commit (sends/send-batcher.ts), built in service.ts. */
  readonly sends: Sends;
}
