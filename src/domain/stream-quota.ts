/**
 * Open streams per agent in this process, against a maximum. Every open stream is registered
 * with a way to end it, so that the process can end all streams of an agent whose credentials
 * were revoked (see caller-check.ts), and so that tests and metrics can see what is open.
 */
import { ResourceExhausted, type DomainError } from "./model/errors.js";
import type { AgentId, CustomerId } from "./model/ids.js";

/** One open stream: whose it is, and how to end it. */
export interface StreamHolder {
  readonly agentId: AgentId;
  readonly customerId: CustomerId;
  /** Ends the stream with `reason`; its slot is released as it ends. */
  end(reason: DomainError): void;
}

export class StreamQuota {
  readonly #open = new Map<AgentId, Set<StreamHolder>>();
  #total = 0;

  /** `max` streams per agent; 0 turns the limit off. */
  constructor(private readonly max: number) {}

  /** Opens a stream for the holder's agent, or throws ResourceExhausted; returns the release function. */
  acquire(holder: StreamHolder): () => void {
    const held = this.#open.get(holder.agentId) ?? new Set<StreamHolder>();
    if (this.max > 0 && held.size >= this.max) {
      throw new ResourceExhausted(`at most ${this.max} open streams per agent; close one first`);
    }
    held.add(holder);
    this.#open.set(holder.agentId, held);
    this.#total++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#total--;
      held.delete(holder);
      if (held.size === 0 && this.#open.get(holder.agentId) === held) this.#open.delete(holder.agentId);
    };
  }

  /** How many streams the agent has open in this process. */
  open(agentId: AgentId): number {
    return this.#open.get(agentId)?.size ?? 0;
  }

  /** How many streams are open in this process. */
  get total(): number {
    return this.#total;
  }

  /** The agents with open streams, by customer. */
  agentsByCustomer(): Map<CustomerId, AgentId[]> {
    const result = new Map<CustomerId, AgentId[]>();
    for (const [agentId, held] of this.#open) {
      const first = held.values().next().value;
      if (first === undefined) continue;
      const agents = result.get(first.customerId) ?? [];
      agents.push(agentId);
      result.set(first.customerId, agents);
    }
    return result;
  }

  /** Ends every open stream of an agent. */
  endAgent(agentId: AgentId, reason: DomainError): void {
    for (const holder of [...(this.#open.get(agentId) ?? [])]) holder.end(reason);
  }
}
