/**
 * Which path carries cross-process delivery. Two Talkhub processes, A and B, on one Postgres:
 *
 * - over the shared NATS with the log sweeps (gap check, membership re-check) slowed to ten
 *   minutes, a watcher on B receives what is written through A within seconds, and a NATS
 *   subscriber of the prefix sees every event published: the bus carried it;
 * - over a private nats-server that denies publishing on the prefix, with fast sweeps, the
 *   watchers still receive everything, and a subscriber of the prefix sees nothing: the sweeps
 *   carried it.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import {
  ProcessSuite,
  createTestDatabase,
  dependenciesReachable,
  eventLog,
  expectContiguousLog,
  expectExactly,
  newAgent,
  newPrefix,
  newSecret,
  participantEventSeq,
  sharedNatsUrl,
  startNatsDenyingPublish,
  talkhubEnv,
  watchEvents,
  watchersReached,
  watchTalk,
  type AgentIdentity,
  type NatsServer,
  type TalkhubProcess,
  type Watcher,
} from "../support/processes.js";

const ready = await dependenciesReachable("bus-delivery", { postgres: true, sharedNats: true, natsServerBinary: true });

/** Far beyond every bound below: nothing these tests wait for may come from a sweep. */
const slowSweep = "600000";
/** How long a watcher may take to receive an event over the bus (load included). */
const busBound = 10_000;

/** Counts the messages published on the subjects of one prefix, per subject. */
async function countPublished(
  natsUrl: string,
  prefix: string,
): Promise<{ count(subject: string): number; total(): number; close(): Promise<void> }> {
  const nc: NatsConnection = await connect({ servers: natsUrl, name: "bus-delivery test" });
  const counts = new Map<string, number>();
  nc.subscribe(`${prefix}.>`, { callback: (_error, msg) => void counts.set(msg.subject, (counts.get(msg.subject) ?? 0) + 1) });
  // The subscription is registered on the server once a round trip has been made.
  await nc.flush();
  return {
    count: (subject) => counts.get(subject) ?? 0,
    total: () => [...counts.values()].reduce((sum, n) => sum + n, 0),
    close: () => nc.close(),
  };
}

/** Waits until every watcher has the talk's events up to `head(watcher)`, within `timeout`. */
async function reach(watchers: readonly Watcher[], chatId: string, head: (w: Watcher) => number, timeout: number): Promise<void> {
  await vi.waitFor(
    () => {
      const behind = watchers.filter((w) => !watchersReached([w], chatId, head));
      if (behind.length > 0)
        throw new Error(`behind after ${timeout} ms: ${behind.map((w) => `${w.name} (${w.events.length} events)`).join(", ")}`);
    },
    { timeout, interval: 50 },
  );
}

/** Sends through A, watches on B, adds a member on A whose feed on B must follow the talk. */
async function crossProcessScene(
  suite: ProcessSuite,
  a: TalkhubProcess | undefined,
  b: TalkhubProcess | undefined,
  secret: string,
  bound: number,
) {
  const { on, keep, database } = suite;
  const customer = randomUUID();
  const [olga, pavel, quinn] = (await Promise.all(["Olga", "Pavel", "Quinn"].map((name) => newAgent(secret, customer, name)))) as [
    AgentIdentity,
    AgentIdentity,
    AgentIdentity,
  ];
  const aOlga = on(a, olga);
  await Promise.all([aOlga, on(a, pavel), on(a, quinn)].map((clients) => clients.talks.listTalks({})));
  // Quinn's feed on B opens before Quinn takes part in anything.
  const feedQuinn = keep(watchEvents("B WatchEvents Quinn", on(b, quinn)));
  await feedQuinn.started();

  const chatId = (await aOlga.talks.createTalk({ type: "group", participantIds: [pavel.id] })).talk?.id ?? "";
  expect(chatId).not.toBe("");
  const talkPavel = keep(watchTalk("B WatchTalk Pavel", on(b, pavel), chatId, 0));
  await talkPavel.started();
  const head = async () =>
    Number((await database().query<{ last_seq: string }>("SELECT last_seq FROM talks WHERE id = $1", [chatId]))[0]?.last_seq);
  // Whatever the watcher's first read of the log found, the rest must come within the bound.
  for (let i = 0; i < 20; i++) await aOlga.messages.sendMessage({ chatId, text: `over the bus ${i}`, clientMessageId: `bus-${i}` });
  const afterMessages = await head();
  await reach([talkPavel], chatId, () => afterMessages, bound);

  // Quinn joins through A: the feed on B follows the talk from its join.
  await aOlga.talks.addParticipant({ chatId, agentId: quinn.id });
  await aOlga.messages.sendMessage({ chatId, text: "welcome Quinn", clientMessageId: "bus-welcome" });
  const last = await head();
  await reach([talkPavel, feedQuinn], chatId, () => last, bound);

  const log = await eventLog(database(), chatId);
  const n = expectContiguousLog(log);
  expect(n).toBe(last);
  expectExactly(talkPavel, chatId, log, 1, n);
  expectExactly(feedQuinn, chatId, log, await participantEventSeq(database(), chatId, "participant_joined", quinn.id), n);
  for (const watcher of [talkPavel, feedQuinn]) expect(watcher.error, `${watcher.name} ended`).toBeUndefined();
  return { customer, chatId, quinn, n };
}

describe.skipIf(!ready)("cross-process delivery over the shared NATS, with the log sweeps slowed to 10 minutes", () => {
  const secret = newSecret();
  const prefix = newPrefix();
  const suite = new ProcessSuite();
  let a: TalkhubProcess | undefined;
  let b: TalkhubProcess | undefined;
  let published: Awaited<ReturnType<typeof countPublished>> | undefined;

  beforeAll(async () => {
    const db = (suite.db = await createTestDatabase());
    const env = {
      ...talkhubEnv({ databaseUrl: db.url, natsUrl: sharedNatsUrl, secret, prefix }),
      TALKHUB_GAP_CHECK_MS: slowSweep,
      TALKHUB_MEMBERSHIP_CHECK_MS: slowSweep,
    };
    [a, b] = await suite.spawn(2, env);
    published = await countPublished(sharedNatsUrl, prefix);
  }, 60_000);

  afterAll(async () => {
    await published?.close();
    await suite.close();
  }, 60_000);

  it("a watcher and a feed on B receive within seconds what is written through A, each event carried by the bus", async () => {
    const { customer, chatId, quinn, n } = await crossProcessScene(suite, a, b, secret, busBound);
    // Every event of the talk went out on its subject once, and Quinn's join on Quinn's.
    expect(published?.count(`${prefix}.talk.${customer}.${chatId}`)).toBe(n);
    expect(published?.count(`${prefix}.agent.${customer}.${quinn.id}`)).toBe(1);
  }, 90_000);
});

describe.skipIf(!ready)("cross-process delivery with the bus cut (publishing denied), by the log sweeps alone", () => {
  const secret = newSecret();
  const prefix = newPrefix();
  const suite = new ProcessSuite();
  let nats: NatsServer | undefined;
  let a: TalkhubProcess | undefined;
  let b: TalkhubProcess | undefined;
  let published: Awaited<ReturnType<typeof countPublished>> | undefined;

  beforeAll(async () => {
    // Every publish of the bus under the prefix is dropped by the server.
    nats = await startNatsDenyingPublish([`${prefix}.>`]);
    const db = (suite.db = await createTestDatabase());
    const env = {
      ...talkhubEnv({ databaseUrl: db.url, natsUrl: nats.url, secret, prefix }),
      TALKHUB_GAP_CHECK_MS: "300",
      TALKHUB_MEMBERSHIP_CHECK_MS: "500",
    };
    [a, b] = await suite.spawn(2, env);
    published = await countPublished(nats.url, prefix);
  }, 60_000);

  afterAll(async () => {
    await published?.close();
    await suite.close();
    await nats?.stop();
  }, 60_000);

  it("a watcher and a feed on B still receive everything written through A, and nothing went over the bus", async () => {
    // Sweeps every 300 / 500 ms: well inside the bound, on a loaded machine too.
    await crossProcessScene(suite, a, b, secret, 20_000);
    expect(published?.total(), "messages published under the prefix").toBe(0);
    // The processes still answer after their publishes were refused.
    for (const process of [a, b]) expect(process?.exited).toBe(false);
  }, 120_000);
});
