/**
 * The scene of the two-process fault tests: three agents with clients on processes A and B, and
 * a group talk of theirs; watchers take an agent on one process in the live-helpers' shape. And
 * the check those tests end with: what a watcher received is exactly the log's events.
 */
import { randomUUID } from "node:crypto";
import { expect } from "vitest";
import type { Event } from "../../gen/talk/v1/events_pb.js";
import type { TestAgent } from "./harness.js";
import { range } from "./live-helpers.js";
import {
  describeSeqs,
  newAgent,
  type AgentIdentity,
  type Clients,
  type LoggedEvent,
  type ProcessSuite,
  type TalkhubProcess,
} from "./processes.js";

/** An identity with clients of one process, in the shape the live-helpers watchers take. */
export const agentOn = (identity: AgentIdentity, clients: Clients): TestAgent => ({
  ...identity,
  role: "agent",
  via: "grpc",
  talks: clients.talks,
  messages: clients.messages,
  agents: clients.agents,
});

export interface GroupScene {
  readonly customer: string;
  /** Olga, Pavel and Quinn, in that order. */
  readonly agents: readonly [AgentIdentity, AgentIdentity, AgentIdentity];
  readonly olga: AgentIdentity;
  readonly pavel: AgentIdentity;
  readonly quinn: AgentIdentity;
  /** Olga's, Pavel's and Quinn's clients on A, and on B. */
  readonly onA: readonly [Clients, Clients, Clients];
  readonly onB: readonly [Clients, Clients, Clients];
  readonly chatId: string;
  /** The talk's last seq when it was made. */
  readonly createdSeq: number;
}

/** Olga, Pavel and Quinn of a new customer, known to both processes, in a group talk Olga made on A. */
export async function groupOnTwo(secret: string, on: ProcessSuite["on"], a: TalkhubProcess, b: TalkhubProcess): Promise<GroupScene> {
  const customer = randomUUID();
  const [olga, pavel, quinn] = (await Promise.all(["Olga", "Pavel", "Quinn"].map((name) => newAgent(secret, customer, name)))) as [
    AgentIdentity,
    AgentIdentity,
    AgentIdentity,
  ];
  const onA = [on(a, olga), on(a, pavel), on(a, quinn)] as const;
  const onB = [on(b, olga), on(b, pavel), on(b, quinn)] as const;
  await Promise.all([...onA, ...onB].map((clients) => clients.talks.listTalks({})));
  const created = await onA[0].talks.createTalk({ type: "group", participantIds: [pavel.id, quinn.id] });
  return {
    customer,
    agents: [olga, pavel, quinn],
    olga,
    pavel,
    quinn,
    onA,
    onB,
    chatId: created.talk?.id ?? "",
    createdSeq: Number(created.talk?.lastSeq ?? 0n),
  };
}

/** Asserts that events are exactly the log's events from..to (seqs and types), in order. */
export function expectLog(label: string, events: readonly Event[], log: readonly LoggedEvent[], from: number, to: number): void {
  const seqs = events.map((event) => Number(event.seq));
  expect(seqs, `${label}: ${describeSeqs(seqs, from, to)}`).toEqual(range(from, to));
  expect(
    events.map((event) => ({ seq: Number(event.seq), type: event.type })),
    `${label}: event types differ from the log`,
  ).toEqual(log.filter((event) => event.seq >= from && event.seq <= to));
}
