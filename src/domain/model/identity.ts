import type { AgentId, CustomerId } from "./ids.js";

export type Role = "agent" | "admin";

/** The verified caller of a request: an agent of a customer. */
export interface Identity {
  readonly agentId: AgentId;
  readonly customerId: CustomerId;
  /** The name claim of the token, when it has one. */
  readonly name: string | undefined;
  readonly role: Role;
  /** When the caller's credential stops being valid (ms since the epoch); Infinity when never. */
  readonly expiresAt: number;
}
