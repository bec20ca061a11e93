import type { AgentsTable } from "./agents.js";
import type { EventsTable } from "./events.js";
import type { MessagesTable } from "./messages.js";
import type { ParticipantsTable } from "./participants.js";
import type { RateBucketsTable } from "./rate-buckets.js";
import type { ReactionsTable } from "./reactions.js";
import type { TalksTable } from "./talks.js";

/** The database as Kysely sees it. */
export interface Schema {
  agents: AgentsTable;
  talks: TalksTable;
  participants: ParticipantsTable;
  messages: MessagesTable;
  reactions: ReactionsTable;
  events: EventsTable;
  rate_buckets: RateBucketsTable;
}
