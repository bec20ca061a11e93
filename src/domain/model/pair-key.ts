import type { AgentId } from "./ids.js";

/**
 * The key of a normal talk's two agents, the same whichever order they come in; the store
 * keeps one live normal talk per key.
 */
export function pairKey(a: AgentId, b: AgentId): string {
  return a < b ? `${a}:${b}` : `${b}:${a}`;
}
