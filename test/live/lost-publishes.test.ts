/**
 * Whatever the bus loses, every stream kind recovers it from the log within the documented
 * bound (docs/events.md): two Talkhub processes on one Postgres and a private nats-server that
 * accepts their connections but denies publishing on the talk subjects, the agent subjects, or
 * both, so those publishes are dropped by the server. Each loss alone is a case of its own: a
 * path that recovers only when both are lost (or only when the other one still arrives) fails
 * one of them. The sweeps run at their default intervals
 * (TALKHUB_GAP_CHECK_MS 1 s, TALKHUB_MEMBERSHIP_CHECK_MS 5 s).
 *
 * On B: a WatchTalk stream, a WatchEvents stream of a member, and WatchEvents streams of agents
 * who join while watching (added to a talk, and in a talk created with them); everything is
 * written through A.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
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

const ready = await dependenciesReachable("lost-publishes", { postgres: true, natsServerBinary: true });

/** The default sweep intervals (docs/events.md), set explicitly so the bounds below follow them. */
const gapCheckMs = 1_000;
const membershipCheckMs = 5_000;
/** What a loaded machine may add to a bound: a query, a process's event loop, the client. */
const slack = 4_000;

/** Waits until every watcher has the talk's events up to `head`, within `timeout` ms. */
async function reach(watchers: readonly Watcher[], chatId: string, head: number, timeout: number): Promise<void> {
  const started = Date.now();
  await vi.waitFor(
    () => {
      const behind = watchers.filter((w) => !watchersReached([w], chatId, () => head));
      if (behind.length > 0) {
        const took = Date.now() - started;
        throw new Error(
          `behind after ${took} ms: ${behind.map((w) => `${w.name} (${w.events.filter((e) => e.chatId === chatId).length} events)`).join(", ")}`,
        );
      }
    },
    { timeout, interval: 50 },
  );
}

/** The subjects whose publishes the private nats-server refuses, one case each. */
const losses = [["talk"], ["agent"], ["talk", "agent"]] as const;

describe.skipIf(!ready).each(losses)(
  "every stream kind recovers from the log what the bus dropped (publishes denied on: %s)",
  (...denied) => {
    const secret = newSecret();
    const prefix = newPrefix();
    const suite = new ProcessSuite();
    let nats: NatsServer | undefined;
    let a: TalkhubProcess | undefined;
    let b: TalkhubProcess | undefined;

    beforeAll(async () => {
      // Every event the bus would carry on the denied subjects is lost.
      nats = await startNatsDenyingPublish(denied.map((d) => `${prefix}.${d}.>`));
      const db = (suite.db = await createTestDatabase());
      const env = {
        ...talkhubEnv({ databaseUrl: db.url, natsUrl: nats.url, secret, prefix }),
        TALKHUB_GAP_CHECK_MS: String(gapCheckMs),
        TALKHUB_MEMBERSHIP_CHECK_MS: String(membershipCheckMs),
      };
      [a, b] = await suite.spawn(2, env);
    }, 60_000);

    afterAll(async () => {
      await suite.close();
      await nats?.stop();
    }, 60_000);

    it("WatchTalk, a member's WatchEvents, and the joins WatchEvents must pick up all get every event within the bounds", async () => {
      const { on, keep, database } = suite;
      const customer = randomUUID();
      const [olga, pavel, quinn, rita] = (await Promise.all(
        ["Olga", "Pavel", "Quinn", "Rita"].map((name) => newAgent(secret, customer, name)),
      )) as [AgentIdentity, AgentIdentity, AgentIdentity, AgentIdentity];
      const aOlga = on(a, olga);
      await Promise.all([aOlga, on(a, pavel), on(a, quinn), on(a, rita)].map((clients) => clients.talks.listTalks({})));
      const chatId = (await aOlga.talks.createTalk({ type: "group", participantIds: [pavel.id] })).talk?.id ?? "";
      expect(chatId).not.toBe("");

      // Open on B: Pavel watches the talk and his feed; Quinn and Rita watch feeds before they
      // take part in anything.
      const talkPavel = keep(watchTalk("B WatchTalk Pavel", on(b, pavel), chatId, 0));
      const feedPavel = keep(watchEvents("B WatchEvents Pavel", on(b, pavel)));
      const feedQuinn = keep(watchEvents("B WatchEvents Quinn (added later)", on(b, quinn)));
      const feedRita = keep(watchEvents("B WatchEvents Rita (in a talk created later)", on(b, rita)));
      for (const watcher of [talkPavel, feedPavel, feedQuinn, feedRita]) await watcher.started();
      const pavelFrom =
        Number((await database().query<{ last_seq: string }>("SELECT last_seq FROM talks WHERE id = $1", [chatId]))[0]?.last_seq) + 1;

      for (let i = 0; i < 77; i++) await aOlga.messages.sendMessage({ chatId, text: `dropped ${i}`, clientMessageId: `lost-${i}` });
      let head = (await eventLog(database(), chatId)).length;
      await reach([talkPavel, feedPavel], chatId, head, gapCheckMs + slack);

      // Joins whose agent-subject publish was dropped: the membership re-check finds them.
      await aOlga.talks.addParticipant({ chatId, agentId: quinn.id });
      const ritaChat = (await aOlga.talks.createTalk({ type: "group", participantIds: [rita.id] })).talk?.id ?? "";
      await aOlga.messages.sendMessage({ chatId, text: "welcome Quinn", clientMessageId: "lost-welcome" });
      await aOlga.messages.sendMessage({ chatId: ritaChat, text: "welcome Rita", clientMessageId: "lost-rita" });
      head = (await eventLog(database(), chatId)).length;
      const ritaHead = (await eventLog(database(), ritaChat)).length;
      await reach([talkPavel, feedPavel, feedQuinn], chatId, head, membershipCheckMs + gapCheckMs + slack);
      await reach([feedRita], ritaChat, ritaHead, membershipCheckMs + gapCheckMs + slack);

      // A last event alone (nothing after it reveals a gap): the head sweep brings it.
      await aOlga.messages.sendMessage({ chatId, text: "the last one", clientMessageId: "lost-last" });
      head = (await eventLog(database(), chatId)).length;
      await reach([talkPavel, feedPavel, feedQuinn], chatId, head, gapCheckMs + slack);

      const log = await eventLog(database(), chatId);
      expect(expectContiguousLog(log)).toBe(head);
      expectExactly(talkPavel, chatId, log, 1, head);
      expectExactly(feedPavel, chatId, log, pavelFrom, head);
      expectExactly(feedQuinn, chatId, log, await participantEventSeq(database(), chatId, "participant_joined", quinn.id), head);
      const ritaLog = await eventLog(database(), ritaChat);
      expectExactly(feedRita, ritaChat, ritaLog, await participantEventSeq(database(), ritaChat, "participant_joined", rita.id), ritaHead);
      for (const watcher of [talkPavel, feedPavel, feedQuinn, feedRita]) expect(watcher.error, `${watcher.name} ended`).toBeUndefined();
    }, 120_000);
  },
);
