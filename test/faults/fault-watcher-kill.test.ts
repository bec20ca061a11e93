/**
 * Fault injection: the process the watchers are connected to is SIGKILLed under load. Two
 * Talkhub processes, A and B, on one Postgres and the shared NATS; WatchTalk and WatchEvents
 * streams are open on B while agents send through both. B dies: the streams end with an error
 * the client sees (not a hang), the watchers resume on A from the last seq (or cursor) they
 * received, and in the end each has exactly the event log, without gap or duplicate. Sends
 * through B that failed are retried on A with the same client_message_id; every acknowledged
 * send is stored exactly once, as sent.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { FeedWatcher, TalkWatcher } from "../support/live-helpers.js";
import { agentOn, expectLog, groupOnTwo } from "../support/two-process-scene.js";
import {
  ProcessSuite,
  createTestDatabase,
  dependenciesReachable,
  eventLog,
  expectContiguousLog,
  newPrefix,
  newSecret,
  sharedNatsUrl,
  talkhubEnv,
  type AgentIdentity,
  type Clients,
  type TalkhubProcess,
} from "../support/processes.js";

const ready = await dependenciesReachable("fault-watcher-kill", { postgres: true, sharedNats: true });

/** Senders through B (retried on A once B is gone) and through A. */
const sendersPerProcess = 3;
/** B is killed once this many sends were acknowledged. */
const ackedBeforeKill = 60;
/** Each resumed watcher must receive this many live events on A before the load stops. */
const liveAfterResume = 30;
/** An upper bound on sends per sender, so the load ends even if the condition above never holds. */
const maxPerSender = 300;
/** How long a stream on B may take to end once B is dead: a hang fails. */
const endBound = 5_000;
/** How long the resumed watchers may take to reach the head once the load stopped. */
const catchUpBound = 10_000;

describe.skipIf(!ready)("SIGKILL of the process watchers are connected to", () => {
  const secret = newSecret();
  const prefix = newPrefix();
  let a: TalkhubProcess | undefined;
  let b: TalkhubProcess | undefined;
  const suite = new ProcessSuite();
  const { on, database } = suite;
  const recorders: (TalkWatcher | FeedWatcher)[] = [];

  beforeAll(async () => {
    const db = (suite.db = await createTestDatabase());
    [a, b] = await suite.spawn(2, talkhubEnv({ databaseUrl: db.url, natsUrl: sharedNatsUrl, secret, prefix }));
  }, 60_000);

  afterAll(async () => {
    await Promise.all(recorders.map((recorder) => recorder.abort()));
    await suite.close();
  }, 60_000);

  it("streams on B end with an error at the kill, resume on A, and end with exactly the log", async () => {
    const killed = b;
    if (a === undefined || killed === undefined) throw new Error("processes not started");
    const { agents, olga, pavel, quinn, onA, onB, chatId, createdSeq } = await groupOnTwo(secret, on, a, killed);

    const track = <W extends TalkWatcher | FeedWatcher>(watcher: W): W => {
      recorders.push(watcher);
      return watcher;
    };
    // On B: two WatchTalk streams from 0 and Pavel's feed (which starts at the talk's head).
    const talkOnB = [
      track(new TalkWatcher(agentOn(olga, onB[0] as Clients), chatId, 0)),
      track(new TalkWatcher(agentOn(quinn, onB[2] as Clients), chatId, 0)),
    ];
    const feedOnB = track(new FeedWatcher(agentOn(pavel, onB[1] as Clients)));
    await Promise.all([...talkOnB.map((watcher) => watcher.waitSeq(createdSeq)), feedOnB.ready()]);

    // The load: senders through B and through A, one send after another each. A send that
    // fails is retried on A with the same client_message_id (at most 20 attempts, 30 s).
    let bAlive = true;
    let stopping = false;
    const attempted = new Set<string>();
    const acked = new Map<string, { id: string; seq: number; text: string; ownerId: string; at: number }>();
    const failures: { clientMessageId: string; code: string; at: number }[] = [];
    const abandoned: string[] = [];
    const sendOne = async (sender: number, clientMessageId: string, text: string) => {
      attempted.add(clientMessageId);
      const agentIndex = sender % agents.length;
      const deadline = Date.now() + 30_000;
      for (let attempt = 1; attempt <= 20 && Date.now() < deadline; attempt++) {
        const throughB = sender < sendersPerProcess && bAlive;
        const clients = (throughB ? onB : onA)[agentIndex] as Clients;
        try {
          const response = await clients.messages.sendMessage({ chatId, text, clientMessageId }, { timeoutMs: 5_000 });
          const message = response.message;
          acked.set(clientMessageId, {
            id: message?.id ?? "",
            seq: Number(message?.seq ?? 0n),
            text,
            ownerId: (agents[agentIndex] as AgentIdentity).id,
            at: Date.now(),
          });
          return;
        } catch (reason) {
          failures.push({ clientMessageId, code: Code[ConnectError.from(reason).code], at: Date.now() });
        }
      }
      abandoned.push(clientMessageId);
    };
    const load = Array.from({ length: 2 * sendersPerProcess }, async (_, sender) => {
      for (let j = 0; j < maxPerSender && !stopping; j++) await sendOne(sender, `wk-${sender}-${j}`, `sender ${sender} message ${j}`);
    });

    try {
      // The fault, once the load is under way.
      await vi.waitFor(
        () => {
          if (acked.size < ackedBeforeKill) throw new Error(`${acked.size} of ${ackedBeforeKill} sends acknowledged before the kill`);
        },
        { timeout: 20_000, interval: 20 },
      );
      const ackedAtKill = acked.size;
      // New attempts go to A from now on; those in flight on B die with it.
      bAlive = false;
      const killedAt = Date.now();
      await killed.kill();

      // Every stream on B ends, with an error the client sees, within the bound.
      const onBWatchers = [...talkOnB, feedOnB];
      await vi.waitFor(
        () => {
          const open = onBWatchers.filter((watcher) => !watcher.ended);
          if (open.length > 0)
            throw new Error(
              `streams on B still open ${Date.now() - killedAt} ms after the kill: ${open.map((w) => w.describe()).join("; ")}`,
            );
        },
        { timeout: endBound, interval: 20 },
      );
      const endedMs = Date.now() - killedAt;
      for (const watcher of onBWatchers) {
        // Not our own cancel: the connection died under the stream. connect-node reports that
        // as UNAVAILABLE, as CANCELED when node's HTTP/2 closes the stream with CANCEL, or as
        // ABORTED when the socket read fails with ECONNRESET; which one depends on the phase
        // the kill lands in.
        expect(watcher.aborted, `stream on B was not cancelled by the test: ${watcher.describe()}`).toBe(false);
        expect(
          watcher.error === undefined ? "ended without error" : Code[watcher.error.code],
          `stream on B: ${watcher.describe()}`,
        ).toBeOneOf([Code[Code.Unavailable], Code[Code.Canceled], Code[Code.Aborted]]);
      }

      // Resume on A from what each received.
      const talkOnA = talkOnB.map((watcher, i) =>
        track(new TalkWatcher(agentOn(watcher.agent, onA[i === 0 ? 0 : 2] as Clients), chatId, watcher.lastSeq)),
      );
      const feedOnA = track(new FeedWatcher(agentOn(pavel, onA[1] as Clients), feedOnB.cursor));
      expect(feedOnB.cursor, "the feed on B had a cursor to resume from").not.toBe("");
      const resumedAt = Date.now();

      // The load goes on until each resumed watcher has received live events on A.
      const liveEnough = () =>
        [...talkOnA.map((watcher) => watcher.events), feedOnA.of(chatId)].every((events) => events.length >= liveAfterResume) &&
        [...acked.values()].filter((sent) => sent.at > resumedAt).length >= liveAfterResume;
      await vi.waitFor(
        () => {
          if (!liveEnough()) throw new Error(`resumed watchers: ${[...talkOnA, feedOnA].map((w) => w.describe()).join("; ")}`);
        },
        { timeout: 30_000, interval: 50 },
      );
      stopping = true;
      await Promise.all(load);

      const head = Number(
        (await database().query<{ last_seq: string }>("SELECT last_seq FROM talks WHERE id = $1", [chatId]))[0]?.last_seq,
      );
      await vi.waitFor(
        () => {
          const behind = talkOnA.filter((watcher) => watcher.lastSeq < head || watcher.ended);
          const feedBehind = (feedOnA.of(chatId).at(-1)?.seq ?? 0n) < BigInt(head) || feedOnA.ended;
          if (behind.length > 0 || feedBehind)
            throw new Error(`not at seq ${head}: ${[...talkOnA, feedOnA].map((w) => w.describe()).join("; ")}`);
        },
        { timeout: catchUpBound, interval: 50 },
      );

      const log = await eventLog(database(), chatId);
      const n = expectContiguousLog(log);
      expect(n).toBe(head);

      // Each watcher, B's part then A's part: exactly the log.
      talkOnB.forEach((onBWatcher, i) => {
        const resumed = talkOnA[i] as TalkWatcher;
        expectLog(`${onBWatcher.agent.name}'s WatchTalk, B then A`, [...onBWatcher.events, ...resumed.events], log, 1, n);
        expect(resumed.events.length, `${onBWatcher.agent.name}'s WatchTalk received on A`).toBeGreaterThanOrEqual(liveAfterResume);
      });
      expectLog("Pavel's WatchEvents, B then A", [...feedOnB.of(chatId), ...feedOnA.of(chatId)], log, createdSeq + 1, n);
      expect(
        feedOnA.events.filter((event) => event.chatId !== chatId),
        "feed events of other talks",
      ).toEqual([]);
      expect(feedOnB.of(chatId).length, "feed events received on B before the kill").toBeGreaterThan(0);

      // The kill hit the load: sends acknowledged before it, failed at it, and after it.
      expect(ackedAtKill).toBeGreaterThanOrEqual(ackedBeforeKill);
      expect(failures.filter((failure) => failure.at >= killedAt).length, "sends through B that failed at the kill").toBeGreaterThan(0);
      expect(abandoned, "sends given up after 30 s of retries").toEqual([]);
      expect(acked.size, "every attempted send was acknowledged in the end").toBe(attempted.size);

      // Every acknowledged send is stored exactly once, as sent; nothing else is.
      const rows = await database().query<{ id: string; seq: string; client_message_id: string; text: string; owner_id: string }>(
        "SELECT id, seq, client_message_id, text, owner_id FROM messages WHERE chat_id = $1 AND client_message_id IS NOT NULL",
        [chatId],
      );
      const stored = new Map<string, { id: string; seq: number; text: string; ownerId: string }[]>();
      for (const row of rows) {
        const list = stored.get(row.client_message_id) ?? [];
        list.push({ id: row.id, seq: Number(row.seq), text: row.text, ownerId: row.owner_id });
        stored.set(row.client_message_id, list);
      }
      for (const [clientMessageId, sent] of acked) {
        expect(stored.get(clientMessageId), `acknowledged send ${clientMessageId}`).toEqual([
          { id: sent.id, seq: sent.seq, text: sent.text, ownerId: sent.ownerId },
        ]);
      }
      expect(rows.length, "stored messages with a client_message_id").toBe(acked.size);
      expect(n, "the log: creation plus one event per send").toBe(createdSeq + acked.size);
      expect(a.exited, "A is still running").toBe(false);
      console.log(
        `watcher kill: streams on B ended within ${endedMs} ms (${onBWatchers.map((w) => (w.error === undefined ? "none" : Code[w.error.code])).join(", ")}); ` +
          `${failures.length} failed attempts retried on A; ${acked.size} sends acknowledged (${ackedAtKill} before the kill); log ${n} events`,
      );
    } finally {
      stopping = true;
      bAlive = false;
      await Promise.all(load);
    }
  }, 120_000);
});
