/**
 * Round trips per change: the statements a change sends to the database (BEGIN and COMMIT
 * included), counted at the driver as the changes-at-head test counts them (the service's
 * onStatement). The service runs in the bench process for this, on the bench database (the
 * server under test has stopped: a PGlite data dir takes one process at a time), and each change
 * runs a few times on a fresh message or participant: the most statements any run sent is its
 * figure, as a single run on an idle service could hide a retry.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { defaultLiveConfig, type Config } from "../src/config.js";
import { startService } from "../src/service.js";
import { grpcClients, natsUrl, newAgent, type BenchDatabase, type Clients } from "./server.js";

export interface ChangeRoundTrips {
  readonly change: string;
  /** The most statements one run of the change sent. */
  readonly statements: number;
  readonly runs: number;
  /** The statements of the run that sent the most (shown when it misses). */
  readonly sample: string[];
}

/** The changes counted, in the order the report lists them. */
export const changes = ["edit", "reaction add", "reaction remove", "participant add", "participant remove", "message delete"] as const;

export async function runRoundTrips(database: BenchDatabase, runs: number, log: (line: string) => void): Promise<ChangeRoundTrips[]> {
  let statements: string[] | undefined;
  const secret = randomBytes(32).toString("hex");
  const config: Config = {
    host: "127.0.0.1",
    port: 0,
    database:
      database.url === undefined ? { kind: "pglite", dataDir: database.dataDir } : { kind: "postgres", url: database.url, poolSize: 10 },
    auth: { secret, jwksUrl: undefined, issuer: undefined, audience: undefined },
    natsUrl: database.url === undefined ? undefined : natsUrl,
    dataDir: database.dataDir,
    live: { ...defaultLiveConfig, natsPrefix: `bench${randomBytes(6).toString("hex")}` },
    operator: null,
  };
  const service = await startService(config, { onStatement: (sql) => statements?.push(sql) });
  const customerId = randomUUID();
  const agents = await Promise.all([0, 1, 2].map(() => newAgent(secret, customerId)));
  const [a, b, c] = agents.map((agent) => grpcClients(service.url, agent.token)) as [Clients, Clients, Clients];
  const worst = new Map<string, string[]>();
  /** Runs `call` with its statements counted, keeping the run that sent the most. */
  const count = async (change: string, call: () => Promise<unknown>) => {
    const seen: string[] = [];
    statements = seen;
    try {
      await call();
    } finally {
      statements = undefined;
    }
    if (seen.length >= (worst.get(change)?.length ?? -1)) worst.set(change, seen);
  };
  try {
    // Entered into the directory (a participant must be known), as a first call does.
    for (const clients of [a, b, c]) await clients.talks.listTalks({});
    const cId = agents[2]!.id;
    for (let run = 0; run < runs; run++) {
      const talk = (await a.talks.createTalk({ type: "group", participantIds: [agents[1]!.id] })).talk!;
      const message = (await a.messages.sendMessage({ chatId: talk.id, text: "first draft" })).message!;
      await count("edit", () => a.messages.updateMessage({ id: message.id, text: "second draft" }));
      await count("reaction add", () => b.messages.addReaction({ messageId: message.id, emoji: "👍" }));
      await count("reaction remove", () => b.messages.removeReaction({ messageId: message.id, emoji: "👍" }));
      let participantId = "";
      await count(
        "participant add",
        async () => (participantId = (await a.talks.addParticipant({ chatId: talk.id, agentId: cId })).participant!.id),
      );
      await count("participant remove", () => a.talks.removeParticipant({ chatId: talk.id, participantId }));
      await count("message delete", () => a.messages.deleteMessage({ id: message.id }));
    }
  } finally {
    for (const clients of [a, b, c]) clients.close();
    await service.close();
  }
  const out = changes.map((change) => {
    const sample = worst.get(change) ?? [];
    return { change, statements: sample.length, runs, sample };
  });
  log(`  round trips ${database.backend}: ${out.map((x) => `${x.change} ${x.statements}`).join(", ")}`);
  return out;
}
