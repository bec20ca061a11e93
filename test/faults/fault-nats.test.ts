/**
 * Fault injection: the NATS server goes away for ~2 s in the middle of a load and comes back on
 * the same port. The database is the truth: sends keep succeeding, and every watcher still ends
 * with every event of the talk, in order, without gap or duplicate.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
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
  sleep,
  startNats,
  talkhubEnv,
  watchEvents,
  watchersReached,
  watchTalk,
  type AgentIdentity,
  type Clients,
  type NatsServer,
  type TalkhubProcess,
} from "../support/processes.js";

const ready = await dependenciesReachable("fault-nats", { postgres: true, natsServerBinary: true });

const total = 300;
const spacingMs = 20; // 300 sends spread over ~6 s
const outageAfterMs = 1500;
const outageMs = 2000;

describe.skipIf(!ready)("a NATS outage under load", () => {
  const secret = newSecret();
  const prefix = newPrefix();
  let nats: NatsServer | undefined;
  let a: TalkhubProcess | undefined;
  let b: TalkhubProcess | undefined;
  const suite = new ProcessSuite();
  const { on, keep, database } = suite;

  beforeAll(async () => {
    const db = (suite.db = await createTestDatabase());
    nats = await startNats();
    const env = talkhubEnv({ databaseUrl: db.url, natsUrl: nats.url, secret, prefix });
    [a, b] = await suite.spawn(2, env);
  }, 60_000);

  afterAll(async () => {
    await suite.close();
    await nats?.stop();
  }, 60_000);

  it("loses no event and duplicates no message while NATS restarts", async () => {
    if (nats === undefined) throw new Error("nats not started");
    const server = nats;
    const customer = randomUUID();
    const [olga, pavel, quinn] = (await Promise.all(["Olga", "Pavel", "Quinn"].map((name) => newAgent(secret, customer, name)))) as [
      AgentIdentity,
      AgentIdentity,
      AgentIdentity,
    ];
    const senders = [on(b, olga), on(b, pavel), on(b, quinn)];
    await Promise.all(senders.map((clients) => clients.talks.listTalks({})));
    const created = await (senders[0] as Clients).talks.createTalk({ type: "group", participantIds: [pavel.id, quinn.id] });
    const chatId = created.talk?.id ?? "";
    const createdSeq = Number(created.talk?.lastSeq ?? 0n);
    expect(createdSeq).toBe(6);

    const onA = [
      keep(watchTalk("A WatchTalk Olga", on(a, olga), chatId, 0)),
      keep(watchTalk("A WatchTalk Pavel", on(a, pavel), chatId, 0)),
      keep(watchTalk("A WatchTalk Quinn", on(a, quinn), chatId, 0)),
    ];
    const feedPavel = keep(watchEvents("A WatchEvents Pavel", on(a, pavel)));
    const onB = keep(watchTalk("B WatchTalk Quinn", on(b, quinn), chatId, 0));
    const all = [...onA, feedPavel, onB];
    await Promise.all(all.map((watcher) => watcher.started()));

    // Three senders (one per agent), each sending its share one after another; send i starts no
    // earlier than t0 + i * spacing. A failed send is retried with the same client_message_id
    // (at most 20 attempts, within 30 s).
    const t0 = Date.now();
    const acked = new Map<string, { id: string; at: number }>();
    const failures: string[] = [];
    /** Set when the fault injection itself failed: the senders give up at once. */
    let aborted = false;
    const send = async (i: number) => {
      const clientMessageId = `fn-${i}`;
      const sender = senders[i % senders.length] as Clients;
      const deadline = Date.now() + 30_000;
      for (let attempt = 1; attempt <= 20 && Date.now() < deadline && !aborted; attempt++) {
        try {
          const response = await sender.messages.sendMessage(
            { chatId, text: `message ${i}`, clientMessageId },
            { timeoutMs: 10_000 },
          );
          acked.set(clientMessageId, { id: response.message?.id ?? "", at: Date.now() });
          return;
        } catch (reason) {
          const error = ConnectError.from(reason);
          failures.push(`${clientMessageId} attempt ${attempt}: ${Code[error.code]} ${error.rawMessage}`);
          await sleep(100);
        }
      }
    };
    const sends = senders.map(async (_, k) => {
      for (let i = k; i < total && !aborted; i += senders.length) {
        await sleep(Math.max(0, t0 + i * spacingMs - Date.now()));
        await send(i);
      }
    });

    // The outage: stop NATS for ~2 s, then start it again on the same port.
    const outage = (async () => {
      try {
        await sleep(Math.max(0, t0 + outageAfterMs - Date.now()));
        await server.stop();
        const stoppedAt = Date.now();
        const seenAtStop = onA.map((watcher) => watcher.events.length);
        await sleep(outageMs);
        const seenBeforeRestart = onA.map((watcher) => watcher.events.length);
        const restartAt = Date.now();
        await server.restart();
        return { stoppedAt, restartAt, seenAtStop, seenBeforeRestart };
      } catch (error) {
        aborted = true;
        throw error;
      }
    })();

    const { stoppedAt, restartAt, seenAtStop, seenBeforeRestart } = await outage;
    await Promise.all(sends);
    const sendMs = Date.now() - t0;

    const last = async () =>
      Number((await database().query<{ last_seq: string }>("SELECT last_seq FROM talks WHERE id = $1", [chatId]))[0]?.last_seq);
    const head = await last();
    const caughtUp = await vi.waitFor(async () => { if (!(watchersReached(all, chatId, () => head))) throw new Error("not yet"); }, { timeout: 15_000, interval: 50 }).then(() => true, () => false);

    const log = await eventLog(database(), chatId);
    const n = expectContiguousLog(log);
    expect(n).toBe(head);

    // The database holds each client_message_id exactly once, and every acknowledged send.
    const rows = await database().query<{ id: string; client_message_id: string }>(
      "SELECT id, client_message_id FROM messages WHERE chat_id = $1 AND client_message_id IS NOT NULL",
      [chatId],
    );
    const distinctSent = new Set(Array.from({ length: total }, (_, i) => `fn-${i}`));
    expect(acked.size, `acknowledged sends (failures: ${failures.slice(0, 5).join("; ")})`).toBe(total);
    expect(rows.length, "messages with a client_message_id").toBe(distinctSent.size);
    expect(new Set(rows.map((row) => row.client_message_id)).size).toBe(rows.length);
    const byClientId = new Map(rows.map((row) => [row.client_message_id, row.id]));
    for (const [clientMessageId, { id }] of acked) expect(byClientId.get(clientMessageId), clientMessageId).toBe(id);
    expect(n).toBe(createdSeq + total);

    // Every watcher, on A and on B, has every event in order.
    expect(caughtUp, `watchers caught up with seq ${head} within 15 s`).toBe(true);
    for (const watcher of [...onA, onB]) {
      expect(watcher.error, `${watcher.name} ended`).toBeUndefined();
      expectExactly(watcher, chatId, log, 1, n);
    }
    expect(feedPavel.error, `${feedPavel.name} ended`).toBeUndefined();
    expectExactly(feedPavel, chatId, log, createdSeq + 1, n);

    // The outage really happened under load, and the log filled in while the bus was away.
    const ackedDuringOutage = [...acked.values()].filter(({ at }) => at > stoppedAt && at < restartAt).length;
    expect(ackedDuringOutage, "sends acknowledged while NATS was down").toBeGreaterThan(20);
    seenAtStop.forEach((count, i) => {
      const name = onA[i]?.name ?? "";
      expect(seenBeforeRestart[i] ?? 0, `${name}: events received from the log while NATS was down`).toBeGreaterThan(count);
    });
    // Sends do not depend on the bus: none should fail at all (the retries above are a safety net).
    expect(failures, "sends that failed while NATS was away").toEqual([]);
    expect(sendMs).toBeLessThan(30_000);
  }, 60_000);
});
