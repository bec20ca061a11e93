/**
 * Ends the open streams of agents that were deleted, in this process or another one: every
 * `everyMs` one query per customer with open streams here reads which of its streaming agents
 * are still in the directory, and the streams of the others end with UNAUTHENTICATED. The cost
 * does not grow with the number of streams, only with the customers watching in this process.
 */
import { findLiveAgents } from "../store/agent-store.js";
import type { DomainDeps } from "./deps.js";
import { Unauthenticated } from "./model/errors.js";
import type { AgentId } from "./model/ids.js";
import type { StreamQuota } from "./stream-quota.js";

/** Agent ids per query, far below any bind-parameter limit. */
const batch = 500;

/** Checks once; resolves when done. */
export async function checkCallers(deps: DomainDeps, streams: StreamQuota): Promise<void> {
  for (const [customerId, agentIds] of streams.agentsByCustomer()) {
    for (let i = 0; i < agentIds.length; i += batch) {
      const ids = agentIds.slice(i, i + batch);
      const live = new Set<AgentId>((await findLiveAgents(deps.db, customerId, ids)).map((agent) => agent.id));
      for (const id of ids) {
        if (!live.has(id))
          streams.endAgent(id, new Unauthenticated("this agent was removed from the directory; its token no longer opens streams"));
      }
    }
  }
}

/** Checks every `everyMs` (one check at a time); returns the stop function. */
export function startCallerCheck(deps: DomainDeps, streams: StreamQuota, everyMs: number, onError: (error: unknown) => void): () => void {
  let running = false;
  const timer = setInterval(() => {
    if (running || streams.total === 0) return;
    running = true;
    checkCallers(deps, streams).then(
      () => (running = false),
      (error: unknown) => {
        running = false;
        onError(error);
      },
    );
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
