import type { Selectable } from "kysely";
import { sql } from "kysely";
import type { AgentId, CustomerId } from "../domain/model/ids.js";
import type { Role } from "../domain/model/identity.js";
import type { Agent } from "../domain/model/model.js";
import type { Executor } from "./database.js";
import type { AgentsTable } from "./schema/agents.js";

type AgentRow = Selectable<AgentsTable>;

function toAgent(row: AgentRow): Agent {
  return {
    id: row.id as AgentId,
    customerId: row.customer_id as CustomerId,
    name: row.name,
    role: row.role as Role,
    tmCreate: row.tm_create,
    tmUpdate: row.tm_update,
    tmDelete: row.tm_delete,
  };
}

/**
 * Enters a calling agent from its token: inserted when new; its name refreshed when the token
 * names it differently (never once removed). Returns the stored agent, or null when the id belongs to another
 * customer.
 */
export async function upsertAgentFromToken(
  db: Executor,
  agent: { id: AgentId; customerId: CustomerId; name: string | undefined; role: Role; now: Date },
): Promise<Agent | null> {
  const inserted = await db
    .insertInto("agents")
    .values({
      id: agent.id,
      customer_id: agent.customerId,
      name: agent.name ?? "",
      role: agent.role,
      tm_create: agent.now,
      tm_update: agent.now,
    })
    .onConflict((oc) =>
      agent.name === undefined
        ? oc.column("id").doNothing()
        : oc
            .column("id")
            .doUpdateSet({ name: agent.name, tm_update: agent.now })
            .where("agents.customer_id", "=", agent.customerId)
            .where("agents.name", "<>", agent.name)
            // A removed agent's row stays as it was removed: its token is refused, writing nothing.
            .where("agents.tm_delete", "is", null),
    )
    .returningAll()
    .executeTakeFirst();
  if (inserted !== undefined) return toAgent(inserted);
  const existing = await db
    .selectFrom("agents")
    .selectAll()
    .where("id", "=", agent.id)
    .where("customer_id", "=", agent.customerId)
    .executeTakeFirst();
  return existing === undefined ? null : toAgent(existing);
}

/** Inserts an agent, or revives a deleted one with the same id; null when the id is taken. */
export async function insertAgent(db: Executor, agent: Agent): Promise<Agent | null> {
  const row = await db
    .insertInto("agents")
    .values({
      id: agent.id,
      customer_id: agent.customerId,
      name: agent.name,
      role: agent.role,
      tm_create: agent.tmCreate,
      tm_update: agent.tmUpdate,
    })
    .onConflict((oc) =>
      oc
        .column("id")
        .doUpdateSet({ name: agent.name, role: agent.role, tm_update: agent.tmUpdate, tm_delete: null })
        .where("agents.customer_id", "=", agent.customerId)
        .where("agents.tm_delete", "is not", null),
    )
    .returningAll()
    .executeTakeFirst();
  return row === undefined ? null : toAgent(row);
}

/** One agent of a customer, deleted ones included. */
export async function findAgent(db: Executor, customerId: CustomerId, id: AgentId): Promise<Agent | null> {
  const row = await db.selectFrom("agents").selectAll().where("id", "=", id).where("customer_id", "=", customerId).executeTakeFirst();
  return row === undefined ? null : toAgent(row);
}

/** The live (not deleted) agents among some ids, of one customer. */
export async function findLiveAgents(db: Executor, customerId: CustomerId, ids: readonly AgentId[]): Promise<Agent[]> {
  if (ids.length === 0) return [];
  const rows = await db
    .selectFrom("agents")
    .selectAll()
    .where("id", "in", ids)
    .where("customer_id", "=", customerId)
    .where("tm_delete", "is", null)
    .execute();
  return rows.map(toAgent);
}

export interface AgentCursor {
  readonly name: string;
  readonly id: AgentId;
}

/** A customer's live agents ordered by name, after a cursor. */
export async function listAgents(db: Executor, customerId: CustomerId, after: AgentCursor | null, limit: number): Promise<Agent[]> {
  let query = db.selectFrom("agents").selectAll().where("customer_id", "=", customerId).where("tm_delete", "is", null);
  if (after !== null) {
    query = query.where(sql<boolean>`(name, id) > (${after.name}, ${after.id})`);
  }
  const rows = await query.orderBy("name").orderBy("id").limit(limit).execute();
  return rows.map(toAgent);
}

/** Writes an agent's name, role and times (only the agent of its own customer). */
export async function saveAgent(db: Executor, agent: Agent): Promise<void> {
  await db
    .updateTable("agents")
    .set({ name: agent.name, role: agent.role, tm_update: agent.tmUpdate, tm_delete: agent.tmDelete })
    .where("id", "=", agent.id)
    .where("customer_id", "=", agent.customerId)
    .execute();
}
