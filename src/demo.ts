/**
 * The embedded default's demo: a customer with an admin and two agents, kept in the data dir
 * so their ids (and so their tokens) stay the same across restarts.
 */
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { mintToken } from "./auth/tokens.js";
import { makePrivateDir, writePrivateFile } from "./data-dir.js";
import { createAgent } from "./domain/agents.js";
import type { DomainDeps } from "./domain/deps.js";
import { AlreadyExists } from "./domain/model/errors.js";
import type { AgentId, CustomerId } from "./domain/model/ids.js";

interface DemoPeople {
  readonly customerId: string;
  readonly adminId: string;
  readonly agents: readonly { readonly id: string; readonly name: string }[];
}

function loadOrCreatePeople(dataDir: string): DemoPeople {
  const path = join(dataDir, "demo.json");
  try {
    return JSON.parse(readFileSync(path, "utf8")) as DemoPeople;
  } catch {
    const people: DemoPeople = {
      customerId: randomUUID(),
      adminId: randomUUID(),
      agents: [
        { id: randomUUID(), name: "Alice" },
        { id: randomUUID(), name: "Bob" },
      ],
    };
    makePrivateDir(dataDir);
    writePrivateFile(path, `${JSON.stringify(people, null, 2)}\n`);
    return people;
  }
}

/** Enters the demo people into the directory and returns a ready-to-paste introduction. */
export async function demoIntroduction(deps: DomainDeps, dataDir: string, secret: string, port: number, tls = false): Promise<string> {
  const people = loadOrCreatePeople(dataDir);
  const admin = {
    agentId: people.adminId as AgentId,
    customerId: people.customerId as CustomerId,
    name: "Admin",
    role: "admin" as const,
    expiresAt: Infinity,
  };
  for (const agent of [{ id: people.adminId, name: "Admin", role: "admin" }, ...people.agents.map((a) => ({ ...a, role: "agent" }))]) {
    try {
      await createAgent(deps, admin, agent);
    } catch (error) {
      if (!(error instanceof AlreadyExists)) throw error;
    }
  }
  const adminToken = await mintToken(secret, { customerId: people.customerId, agentId: people.adminId, name: "Admin", role: "admin" });
  const tokens = await Promise.all(
    people.agents.map((agent) => mintToken(secret, { customerId: people.customerId, agentId: agent.id, name: agent.name })),
  );
  const [alice, bob] = people.agents;
  const base = `${tls ? "https" : "http"}://localhost:${port}`;
  return [
    `Demo customer ${people.customerId} (tokens valid 30 days):`,
    `  admin           ${people.adminId}`,
    `    ${adminToken}`,
    ...people.agents.map((agent, i) => `  ${agent.name.padEnd(15)} ${agent.id}\n    ${tokens[i]}`),
    "",
    `Try it: ${alice?.name} opens a talk with ${bob?.name}:`,
    `  curl -s ${base}/talk.v1.TalkService/CreateTalk -H 'Content-Type: application/json' \\`,
    `    -H 'Authorization: Bearer ${tokens[0]}' \\`,
    `    -d '{"participant_ids":["${bob?.id}"]}'`,
  ].join("\n");
}
