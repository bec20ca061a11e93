/**
 * Agent display names: learnt from participants and tokens, otherwise looked up once in the
 * agent directory. `changed` fires when a looked-up name arrives, so views can re-render.
 */
import type { Api } from "./api.js";

export class Names {
  private readonly known = new Map<string, string>();
  private readonly pending = new Set<string>();

  constructor(
    private readonly api: Api,
    private readonly changed: () => void,
  ) {}

  learn(agentId: string, name: string): void {
    if (agentId !== "" && name !== "") this.known.set(agentId, name);
  }

  /** The agent's name, or a short form of its id while the name is unknown. */
  of(agentId: string): string {
    const name = this.known.get(agentId);
    if (name !== undefined) return name;
    this.lookUp(agentId);
    return agentId.slice(0, 8);
  }

  private lookUp(agentId: string): void {
    if (agentId === "" || this.pending.has(agentId)) return;
    this.pending.add(agentId);
    this.api.agents.getAgent({ id: agentId }).then(
      (response) => {
        if (response.agent?.name) {
          this.learn(agentId, response.agent.name);
          this.changed();
        }
      },
      () => undefined, // a deleted agent keeps its short id
    );
  }
}
