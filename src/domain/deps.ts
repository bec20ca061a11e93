import type { EventSink } from "../events/event-sink.js";
import type { Executor } from "../store/database.js";

/** What the domain needs from the layers below it. */
export interface DomainDeps {
  readonly db: Executor;
  readonly events: EventSink;
  /** The clock; tests may pin it. */
  readonly now: () => Date;
}
