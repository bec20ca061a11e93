/** The agent directory: admins manage their customer's agents; callers are entered from tokens. */
import { findAgent, insertAgent, listAgents as listAgentRows, saveAgent, upsertAgentFromToken } from "../store/agent-store.js";
import type { DomainDeps } from "./deps.js";
import { AlreadyExists, InvalidArgument, NotFound, PermissionDenied } from "./model/errors.js";
import { newId, type AgentId } from "./model/ids.js";
import type { Identity, Role } from "./model/identity.js";
import { limits } from "./model/limits.js";
import type { Agent, Page } from "./model/model.js";
import { decodePageToken, encodePageToken } from "./model/page-token.js";
import * as validate from "./model/validate.js";

const roles = ["agent", "admin"] as const satisfies readonly Role[];

/** The name system messages use for an agent: its directory name, or its id when it has none. */
export function displayName(agent: { readonly id: AgentId; readonly name: string }): string {
  return agent.name === "" ? agent.id : agent.name;
}

function requireAdmin(caller: Identity): void {
  if (caller.role !== "admin") throw new PermissionDenied("changing the agent directory needs an admin token");
}

function name(field: string, value: string): string {
  const trimmed = value.trim();
  if (trimmed === "") throw new InvalidArgument(field, "is required");
  return validate.text(field, trimmed, limits.maxAgentNameLength);
}

export async function createAgent(deps: DomainDeps, caller: Identity, input: { id: string; name: string; role: string }): Promise<Agent> {
  requireAdmin(caller);
  const id = input.id === "" ? newId<AgentId>() : validate.requireId<AgentId>("id", input.id);
  const agentName = name("name", input.name);
  const role = input.role === "" ? "agent" : validate.oneOf("role", input.role, roles);
  await deps.writeLimits.take(caller, "agentAdmin");
  const now = deps.now();
  const agent: Agent = { id, customerId: caller.customerId, name: agentName, role, tmCreate: now, tmUpdate: now, tmDelete: null };
  const created = await insertAgent(deps.db, agent);
  if (created === null) throw new AlreadyExists(`agent ${id} already exists`);
  return created;
}

export async function getAgent(deps: DomainDeps, caller: Identity, rawId: string): Promise<Agent> {
  const id = validate.requireId<AgentId>("id", rawId);
  const agent = await findAgent(deps.db, caller.customerId, id);
  if (agent === null || agent.tmDelete !== null) throw new NotFound("agent", id);
  return agent;
}

export async function listAgents(deps: DomainDeps, caller: Identity, input: { pageSize: number; pageToken: string }): Promise<Page<Agent>> {
  const size = validate.pageSize("page_size", input.pageSize);
  const list = ["agents", caller.customerId] as const;
  const after = decodePageToken("page_token", input.pageToken, list, ["string", "string"] as const);
  const cursor = after === null ? null : { name: after[0], id: validate.requireId<AgentId>("page_token", after[1]) };
  const rows = await listAgentRows(deps.db, caller.customerId, cursor, size + 1);
  const items = rows.slice(0, size);
  const last = items.at(-1);
  return { items, nextPageToken: rows.length > size && last !== undefined ? encodePageToken(list, [last.name, last.id]) : "" };
}

export async function updateAgent(
  deps: DomainDeps,
  caller: Identity,
  input: { id: string; name: string | undefined; role: string | undefined },
): Promise<Agent> {
  requireAdmin(caller);
  validate.requireId<AgentId>("id", input.id);
  const newName = input.name === undefined ? undefined : name("name", input.name);
  const role = input.role === undefined ? undefined : validate.oneOf("role", input.role, roles);
  await deps.writeLimits.take(caller, "agentAdmin");
  const agent = await getAgent(deps, caller, input.id);
  const updated: Agent = { ...agent, name: newName ?? agent.name, role: role ?? agent.role, tmUpdate: deps.now() };
  await saveAgent(deps.db, updated);
  return updated;
}

/** Removes an agent from the directory; `callers` forgets it so its next call here is refused. */
export async function deleteAgent(deps: DomainDeps, callers: Callers, caller: Identity, rawId: string): Promise<Agent> {
  requireAdmin(caller);
  validate.requireId<AgentId>("id", rawId);
  await deps.writeLimits.take(caller, "agentAdmin");
  const agent = await getAgent(deps, caller, rawId);
  const now = deps.now();
  const deleted: Agent = { ...agent, tmUpdate: now, tmDelete: now };
  await saveAgent(deps.db, deleted);
  callers.forget(deleted.id);
  return deleted;
}

/**
 * Enters calling agents into the directory from their tokens. A process remembers the agents
 * it entered for a short while so that a busy agent costs one write per interval, not one per
 * request; a deletion is therefore seen by other processes within `ttlMs`.
 */
export class Callers {
  readonly #seen = new Map<string, number>();

  constructor(
    private readonly deps: DomainDeps,
    private readonly ttlMs = 30_000,
    private readonly maxRemembered = 50_000,
  ) {}

  /** Enters or refreshes the caller; PermissionDenied for a deleted agent or a foreign id. */
  async ensure(caller: Identity): Promise<void> {
    const key = `${caller.agentId}\n${caller.customerId}\n${caller.name ?? ""}`;
    const now = Date.now();
    const until = this.#seen.get(key);
    if (until !== undefined && until > now) return;
    const agent = await upsertAgentFromToken(this.deps.db, {
      id: caller.agentId,
      customerId: caller.customerId,
      name: caller.name,
      role: caller.role,
      now: this.deps.now(),
    });
    if (agent === null) throw new PermissionDenied("this agent id belongs to another customer");
    if (agent.tmDelete !== null) throw new PermissionDenied("this agent was removed from the directory");
    if (this.#seen.size >= this.maxRemembered) this.#seen.clear();
    this.#seen.set(key, now + this.ttlMs);
  }

  /** Forgets an agent, so that a deletion made here takes effect here at once. */
  forget(agentId: AgentId): void {
    for (const key of this.#seen.keys()) if (key.startsWith(`${agentId}\n`)) this.#seen.delete(key);
  }
}
