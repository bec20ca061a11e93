import { ResourceExhausted } from "./errors.js";
import type { AgentId } from "./ids.js";

/** Counts an agent's open streams in this process against a maximum. */
export class StreamQuota {
  readonly #open = new Map<AgentId, number>();

  constructor(private readonly max: number) {}

  /** Opens a stream for the agent, or throws ResourceExhausted; returns the release function. */
  acquire(agentId: AgentId): () => void {
    const open = this.#open.get(agentId) ?? 0;
    if (this.max > 0 && open >= this.max) {
      throw new ResourceExhausted(`at most ${this.max} open streams per agent; close one first`);
    }
    this.#open.set(agentId, open + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#open.get(agentId) ?? 1) - 1;
      if (left <= 0) this.#open.delete(agentId);
      else this.#open.set(agentId, left);
    };
  }
}
