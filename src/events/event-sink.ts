import type { EncodedEvent } from "../bus/event-codec.js";
import type { TalkEvent } from "../domain/model/events.js";

/**
 * Where committed events go: the domain hands every event here after its transaction commits.
 * The log in the database is the truth; a sink only speeds delivery to watchers.
 */
export interface EventSink {
  /** Events given encoded (the log row's encoding) are not encoded again for the bus. */
  publish(events: readonly (TalkEvent | EncodedEvent)[]): void;
}
