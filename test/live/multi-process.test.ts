/**
 * Two Talkhub processes, A and B, on one Postgres database and the shared NATS (same subject
 * prefix): watchers on one process receive, in seq order and without gap or duplicate, every
 * event caused through the other.
 *
 * The log sweeps (gap check, membership re-check) run every 10 minutes here, far beyond every
 * wait: what the watchers get, they get over the bus (test/bus-delivery.test.ts checks the
 * sweeps with the bus cut).
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { Code } from "@connectrpc/connect";
import type { Message } from "../../gen/talk/v1/resources_pb.js";
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
  pool,
  sharedNatsUrl,
  talkhubEnv,
  watchEvents,
  watchersReached,
  watchTalk,
  type AgentIdentity,
  type Clients,
  type TalkhubProcess,
  type Watcher,
} from "../support/processes.js";

const ready = await dependenciesReachable("multi-process", { postgres: true, sharedNats: true });

describe.skipIf(!ready)("two Talkhub processes on one database and one NATS", () => {
  const secret = newSecret();
  const prefix = newPrefix();
  let a: TalkhubProcess | undefined;
  let b: TalkhubProcess | undefined;
  const suite = new ProcessSuite();
  const { on, keep, database } = suite;

  beforeAll(async () => {
    const db = (suite.db = await createTestDatabase());
    const env = {
      ...talkhubEnv({ databaseUrl: db.url, natsUrl: sharedNatsUrl, secret, prefix }),
      TALKHUB_GAP_CHECK_MS: "600000",
      TALKHUB_MEMBERSHIP_CHECK_MS: "600000",
    };
    // Both start at once on the fresh database, so both run the migrations concurrently.
    [a, b] = await suite.spawn(2, env);
  }, 60_000);

  afterAll(() => suite.close(), 60_000);

  it("watchers on A receive every event caused through B, in order, exactly once", async () => {
    const customer = randomUUID();
    const [olga, pavel, quinn, dana] = (await Promise.all(
      ["Olga", "Pavel", "Quinn", "Dana"].map((name) => newAgent(secret, customer, name)),
    )) as [AgentIdentity, AgentIdentity, AgentIdentity, AgentIdentity];
    const bOlga = on(b, olga);
    const bPavel = on(b, pavel);
    const bQuinn = on(b, quinn);
    const bDana = on(b, dana);
    await Promise.all([bOlga, bPavel, bQuinn, bDana].map((clients) => clients.talks.listTalks({})));

    // Agent feeds on A opened before the talk exists: they learn of it from the joins.
    const feedPavel = keep(watchEvents("A WatchEvents Pavel", on(a, pavel)));
    const feedDana = keep(watchEvents("A WatchEvents Dana", on(a, dana)));
    await Promise.all([feedPavel.started(), feedDana.started()]);

    const created = await bOlga.talks.createTalk({ type: "group", participantIds: [pavel.id, quinn.id] });
    const chatId = created.talk?.id ?? "";
    expect(chatId).not.toBe("");

    const talkWatchers = [
      keep(watchTalk("A WatchTalk Olga", on(a, olga), chatId, 0)),
      keep(watchTalk("A WatchTalk Pavel", on(a, pavel), chatId, 0)),
      keep(watchTalk("A WatchTalk Quinn", on(a, quinn), chatId, 0)),
    ];
    await Promise.all(talkWatchers.map((watcher) => watcher.started()));

    // Load through B: 200 messages (25 in flight), reactions on acknowledged messages, and
    // Dana added, talking, and removed, all at the same time.
    const senders = [bOlga, bPavel, bQuinn];
    const acked: Message[] = [];
    const messages = pool(200, 25, async (i) => {
      const sender = senders[i % senders.length] as Clients;
      const response = await sender.messages.sendMessage({ chatId, text: `message ${i}`, clientMessageId: `mp-${i}` });
      const message = response.message;
      if (message === undefined) throw new Error(`send ${i}: no message in the response`);
      acked.push(message);
      return message;
    });

    const emojis = ["👍", "🎉", "👀", "✅"];
    const reactions = (async () => {
      if (
        !(await vi
          .waitFor(
            async () => {
              if (!(acked.length >= 30)) throw new Error("not yet");
            },
            { timeout: 20_000, interval: 50 },
          )
          .then(
            () => true,
            () => false,
          ))
      )
        throw new Error("reactions: fewer than 30 messages were acknowledged");
      const targets = acked.slice(0, 20);
      await pool(targets.length, 5, async (k) => {
        const reactor = senders[k % senders.length] as Clients;
        const messageId = (targets[k] as Message).id;
        const emoji = emojis[k % emojis.length] as string;
        await reactor.messages.addReaction({ messageId, emoji });
        if (k < 5) await reactor.messages.removeReaction({ messageId, emoji });
      });
    })();

    const membership = (async (): Promise<Watcher> => {
      await expect
        .poll(() => acked.length, { timeout: 20_000, message: "membership: 100 messages acknowledged" })
        .toBeGreaterThanOrEqual(100);
      const added = await bOlga.talks.addParticipant({ chatId, agentId: dana.id });
      const participantId = added.participant?.id ?? "";
      const danaTalk = keep(watchTalk("A WatchTalk Dana", on(a, dana), chatId, 0));
      await danaTalk.started();
      for (let i = 0; i < 3; i++) {
        await bDana.messages.sendMessage({ chatId, text: `dana ${i}`, clientMessageId: `dana-${i}` });
      }
      await bOlga.talks.removeParticipant({ chatId, participantId });
      return danaTalk;
    })();

    const [, , danaTalk] = await Promise.all([messages, reactions, membership]);

    const head = async () =>
      Number((await database().query<{ last_seq: string }>("SELECT last_seq FROM talks WHERE id = $1", [chatId]))[0]?.last_seq);
    const last = await head();
    const danaJoined = await participantEventSeq(database(), chatId, "participant_joined", dana.id);
    const danaLeft = await participantEventSeq(database(), chatId, "participant_left", dana.id);
    const pavelJoined = await participantEventSeq(database(), chatId, "participant_joined", pavel.id);
    const until = new Map<Watcher, number>([
      [feedDana, danaLeft],
      [danaTalk, danaLeft],
    ]);
    const all = [...talkWatchers, feedPavel, feedDana, danaTalk];
    await vi
      .waitFor(
        () => {
          if (!watchersReached(all, chatId, (watcher) => until.get(watcher) ?? last))
            throw new Error("watchers have not reached their heads");
        },
        { timeout: 30_000, interval: 50 },
      )
      .catch(() => undefined); // the exact-log checks below name which watcher is short

    const log = await eventLog(database(), chatId);
    const n = expectContiguousLog(log);
    expect(n).toBe(last);
    // 6 (creation) + 200 messages + 20 added + 5 removed reactions + 2 (Dana joins) + 3 + 2 (Dana leaves)
    expect(n).toBe(6 + 200 + 25 + 2 + 3 + 2);
    expect(log.filter((event) => event.type === "reaction_added")).toHaveLength(20);
    expect(log.filter((event) => event.type === "reaction_removed")).toHaveLength(5);

    for (const watcher of talkWatchers) {
      expect(watcher.error, `${watcher.name} ended`).toBeUndefined();
      expectExactly(watcher, chatId, log, 1, n);
    }
    expect(feedPavel.error, `${feedPavel.name} ended`).toBeUndefined();
    expectExactly(feedPavel, chatId, log, pavelJoined, n);
    expect(feedDana.error, `${feedDana.name} ended`).toBeUndefined();
    expectExactly(feedDana, chatId, log, danaJoined, danaLeft);
    // Dana's own stream: the whole log up to her leave (a late member replays from 1), then the end.
    expectExactly(danaTalk, chatId, log, 1, danaLeft);
    expect(danaTalk.events.at(-1), `${danaTalk.name}: the last event is Dana's own leave`).toEqual({
      seq: danaLeft,
      type: "participant_left",
      chatId,
    });
    expect(danaTalk.error?.code, `${danaTalk.name} should end with PERMISSION_DENIED after Dana left`).toBe(Code.PermissionDenied);
    // Feeds carry nothing of other talks.
    for (const feed of [feedPavel, feedDana]) expect(feed.events.filter((event) => event.chatId !== chatId)).toEqual([]);
  }, 60_000);

  it("and the other way round: watchers on B receive every event caused through A", async () => {
    const customer = randomUUID();
    const [olga, pavel, quinn] = (await Promise.all(["Olga", "Pavel", "Quinn"].map((name) => newAgent(secret, customer, name)))) as [
      AgentIdentity,
      AgentIdentity,
      AgentIdentity,
    ];
    const aOlga = on(a, olga);
    const aPavel = on(a, pavel);
    const aQuinn = on(a, quinn);
    await Promise.all([aOlga, aPavel, aQuinn].map((clients) => clients.talks.listTalks({})));
    const feedQuinn = keep(watchEvents("B WatchEvents Quinn", on(b, quinn)));
    await feedQuinn.started();

    const created = await aOlga.talks.createTalk({ type: "group", participantIds: [pavel.id, quinn.id] });
    const chatId = created.talk?.id ?? "";
    const talkWatchers = [
      keep(watchTalk("B WatchTalk Olga", on(b, olga), chatId, 0)),
      keep(watchTalk("B WatchTalk Pavel", on(b, pavel), chatId, 0)),
    ];
    await Promise.all(talkWatchers.map((watcher) => watcher.started()));

    const senders = [aOlga, aPavel, aQuinn];
    const sent = await pool(40, 10, async (i) => {
      const response = await (senders[i % 3] as Clients).messages.sendMessage({
        chatId,
        text: `reverse ${i}`,
        clientMessageId: `rev-${i}`,
      });
      return response.message?.id ?? "";
    });
    await aPavel.messages.addReaction({ messageId: sent[0] ?? "", emoji: "🔁" });
    await aQuinn.messages.addReaction({ messageId: sent[1] ?? "", emoji: "🔁" });

    const log = await eventLog(database(), chatId);
    const n = expectContiguousLog(log);
    expect(n).toBe(6 + 40 + 2);
    const all = [...talkWatchers, feedQuinn];
    await vi
      .waitFor(
        async () => {
          if (!watchersReached(all, chatId, () => n)) throw new Error("not yet");
        },
        { timeout: 30_000, interval: 50 },
      )
      .then(
        () => true,
        () => false,
      );
    const quinnJoined = await participantEventSeq(database(), chatId, "participant_joined", quinn.id);
    for (const watcher of talkWatchers) {
      expect(watcher.error, `${watcher.name} ended`).toBeUndefined();
      expectExactly(watcher, chatId, log, 1, n);
    }
    expect(feedQuinn.error, `${feedQuinn.name} ended`).toBeUndefined();
    expectExactly(feedQuinn, chatId, log, quinnJoined, n);
  }, 60_000);
});
