/**
 * What a WatchEvents stream reads when it opens and at each membership re-check (the agent's
 * talks, the talks it left since a time), read for all the streams doing so in one turn of the
 * event loop with one query each.
 */
import { isUuid, type AgentId, type CustomerId } from "../domain/model/ids.js";
import type { Executor } from "../store/database.js";
import { listDepartures, listDeparturesOf, type Departure, type DepartureKey } from "../store/departure-store.js";
import { guarded } from "../store/errors.js";
import { listMemberships, listMembershipsOf, type AgentKey, type Membership } from "../store/participant-store.js";
import { TurnBatch } from "./turn-batch.js";

export interface FeedReads {
  memberships(customerId: CustomerId, agentId: AgentId): Promise<Membership[]>;
  departures(customerId: CustomerId, agentId: AgentId, since: Date): Promise<Departure[]>;
}

export function feedReads(db: Executor): FeedReads {
  const memberships = new TurnBatch<AgentKey, Membership[]>((keys) => guarded(() => listMembershipsOf(db, keys)));
  const departures = new TurnBatch<DepartureKey, Departure[]>((keys) => guarded(() => listDeparturesOf(db, keys)));
  // An id that is not a UUID would fail the whole batch's statement: it is read alone.
  const batchable = (customerId: string, agentId: string) => isUuid(customerId) && isUuid(agentId);
  return {
    memberships: (customerId, agentId) =>
      batchable(customerId, agentId) ? memberships.get({ customerId, agentId }) : guarded(() => listMemberships(db, customerId, agentId)),
    departures: (customerId, agentId, since) =>
      batchable(customerId, agentId)
        ? departures.get({ customerId, agentId, since })
        : guarded(() => listDepartures(db, customerId, agentId, since)),
  };
}
