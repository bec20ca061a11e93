import type { TalkEvent } from "../domain/events.js";

/**
 * Where committed events go: the domain hands every event here after its transaction commits.
 * The log in the database is the truth; a sink only speeds delivery to watchers.
 */
export interface EventSink {
  publish(events: readonly TalkEvent[]): void;
}
