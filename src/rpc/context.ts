import type { Callers } from "../domain/agents.js";
import type { DomainDeps } from "../domain/deps.js";
import type { WatchDeps } from "../live/watch.js";

/** What the RPC handlers are built with. */
export interface RpcContext {
  readonly deps: DomainDeps;
  readonly callers: Callers;
  readonly watch: WatchDeps;
}
