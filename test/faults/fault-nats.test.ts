/**
 * Fault injection: the NATS server fails in the middle of a load, three ways: it is stopped
 * gracefully and started again, SIGKILLed and started again, or paused (SIGSTOP) and continued
 * (SIGCONT). The database is the truth: every send during the fault either succeeds or fails
 * fast with UNAVAILABLE, nothing acknowledged is lost or stored twice, every watcher still ends
 * with every event of the talk, in order, without gap or duplicate, and once NATS is back the
 * processes publish on it again.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { connect } from "@nats-io/transport-node";
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
/** The fault begins once this many sends were acknowledged. */
const ackedBeforeFault = 60;
/** How long NATS stays stopped, dead or paused. */
const outageMs = 3000;
/**
 * How long any send begun during the fault may take to succeed or fail: far below the outage,
 * so a send that waits for the bus fails it.
 */
const sendBound = 1500;
/** How long a publish may take to reach NATS once it is back (reconnects every 250 ms). */
const recoveryBound = 10_000;

type Fault = "stop" | "kill" | "pause";

/** Signals the nats-server this test started, by its PID. */
function signalNats(server: NatsServer, signal: "SIGSTOP" | "SIGCONT"): void {
  const pid = server.pid;
  if (pid === undefined) throw new Error(`nats-server is not running (${signal})`);
  process.kill(pid, signal);
}

describe.skipIf(!ready)("a NATS outage under load", () => {
  const secret = newSecret();
  const prefix = newPrefix();
  let nats: NatsServer | undefined;
  let a: TalkhubProcess | undefined;
  let b: TalkhubProcess | undefined;
  /** Set while the server is paused, so that cleanup continues it. */
  let paused = false;
  const suite = new ProcessSuite();
  const { on, keep, database } = suite;

  beforeAll(async () => {
    const db = (suite.db = await createTestDatabase());
    nats = await startNats();
    const env = talkhubEnv({ databaseUrl: db.url, natsUrl: nats.url, secret, prefix });
    [a, b] = await suite.spawn(2, env);
  }, 60_000);

  afterAll(async () => {
    if (paused && nats !== undefined) signalNats(nats, "SIGCONT");
    await suite.close();
    await nats?.stop();
  }, 60_000);

  /** Starts the fault; resolves with the function that ends it (NATS is back when it resolves). */
  async function begin(server: NatsServer, fault: Fault): Promise<() => Promise<void>> {
    switch (fault) {
      case "stop":
        await server.stop();
        return () => server.restart();
      case "kill":
        await server.kill();
        return () => server.restart();
      case "pause":
        signalNats(server, "SIGSTOP");
        paused = true;
        return async () => {
          signalNats(server, "SIGCONT");
          paused = false;
        };
    }
  }

  /** Talk events published on the server under the prefix, as talk#seq, from now on. */
  async function tap(server: NatsServer) {
    const carried = new Set<string>();
    const nc = await connect({ servers: server.url, name: "fault-nats tap" });
    nc.subscribe(`${prefix}.talk.>`, {
      callback: (_error, msg) => {
        const event = msg.json<{ chatId: string; seq: number }>();
        carried.add(`${event.chatId}#${event.seq}`);
      },
    });
    await nc.flush();
    return { carried, close: () => nc.close() };
  }

  it.each<[string, Fault]>([
    ["stopped gracefully and restarted", "stop"],
    ["SIGKILLed and restarted", "kill"],
    ["paused (SIGSTOP) and continued", "pause"],
  ])(
    "loses no event and duplicates no message when NATS is %s mid-load",
    async (_how, fault) => {
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
      /** Every attempt: when it began and ended, and how (OK or the error code). */
      const attempts: { clientMessageId: string; began: number; ended: number; outcome: string }[] = [];
      /** Set when the fault injection itself failed: the senders give up at once. */
      let aborted = false;
      const send = async (i: number) => {
        const clientMessageId = `fn-${fault}-${i}`;
        const sender = senders[i % senders.length] as Clients;
        const deadline = Date.now() + 30_000;
        for (let attempt = 1; attempt <= 20 && Date.now() < deadline && !aborted; attempt++) {
          const began = Date.now();
          try {
            const response = await sender.messages.sendMessage({ chatId, text: `message ${i}`, clientMessageId }, { timeoutMs: 10_000 });
            acked.set(clientMessageId, { id: response.message?.id ?? "", at: Date.now() });
            attempts.push({ clientMessageId, began, ended: Date.now(), outcome: "OK" });
            return;
          } catch (reason) {
            const error = ConnectError.from(reason);
            attempts.push({ clientMessageId, began, ended: Date.now(), outcome: `${Code[error.code]} ${error.rawMessage}` });
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

      // The fault, once the load is under way: NATS away for outageMs, then back.
      const outage = (async () => {
        try {
          await vi.waitFor(
            () => {
              if (acked.size < ackedBeforeFault)
                throw new Error(`${acked.size} of ${ackedBeforeFault} sends acknowledged before the fault`);
            },
            { timeout: 20_000, interval: 20 },
          );
          const end = await begin(server, fault);
          const faultAt = Date.now();
          const seenAtFault = onA.map((watcher) => watcher.events.length);
          await sleep(outageMs);
          const seenBeforeRecovery = onA.map((watcher) => watcher.events.length);
          const recoveryAt = Date.now();
          await end();
          return { faultAt, recoveryAt, seenAtFault, seenBeforeRecovery };
        } catch (error) {
          aborted = true;
          throw error;
        }
      })();

      const { faultAt, recoveryAt, seenAtFault, seenBeforeRecovery } = await outage;
      await Promise.all(sends);
      const sendMs = Date.now() - t0;

      // The processes publish on NATS again: a message sent through each is carried by the bus.
      const bus = await tap(server);
      try {
        const markers = await Promise.all(
          [on(a, olga), on(b, pavel)].map(async (clients, k) => {
            const response = await clients.messages.sendMessage({
              chatId,
              text: `after the ${fault} ${k}`,
              clientMessageId: `fn-${fault}-marker-${k}`,
            });
            return `${chatId}#${Number(response.message?.seq ?? 0n)}`;
          }),
        );
        await vi.waitFor(
          () => {
            const missing = markers.filter((marker) => !bus.carried.has(marker));
            if (missing.length > 0) throw new Error(`not carried by NATS after the ${fault}: ${missing.join(", ")}`);
          },
          { timeout: recoveryBound, interval: 50 },
        );
      } finally {
        await bus.close();
      }

      const last = async () =>
        Number((await database().query<{ last_seq: string }>("SELECT last_seq FROM talks WHERE id = $1", [chatId]))[0]?.last_seq);
      const head = await last();
      await vi.waitFor(
        () => {
          if (!watchersReached(all, chatId, () => head)) {
            throw new Error(`watchers behind seq ${head}: ${all.map((w) => `${w.name} ${w.events.at(-1)?.seq ?? 0}`).join(", ")}`);
          }
        },
        { timeout: 15_000, interval: 50 },
      );

      const log = await eventLog(database(), chatId);
      const n = expectContiguousLog(log);
      expect(n).toBe(head);

      // The database holds each client_message_id exactly once, and every acknowledged send.
      const rows = await database().query<{ id: string; client_message_id: string }>(
        "SELECT id, client_message_id FROM messages WHERE chat_id = $1 AND client_message_id IS NOT NULL",
        [chatId],
      );
      const failed = attempts.filter((attempt) => attempt.outcome !== "OK");
      expect(
        acked.size,
        `acknowledged sends (failures: ${failed
          .slice(0, 5)
          .map((f) => `${f.clientMessageId} ${f.outcome}`)
          .join("; ")})`,
      ).toBe(total);
      expect(rows.length, "messages with a client_message_id").toBe(total + 2);
      expect(new Set(rows.map((row) => row.client_message_id)).size).toBe(rows.length);
      const byClientId = new Map(rows.map((row) => [row.client_message_id, row.id]));
      for (const [clientMessageId, { id }] of acked) expect(byClientId.get(clientMessageId), clientMessageId).toBe(id);
      expect(n).toBe(createdSeq + total + 2);

      // Every watcher, on A and on B, has every event in order.
      for (const watcher of [...onA, onB]) {
        expect(watcher.error, `${watcher.name} ended`).toBeUndefined();
        expectExactly(watcher, chatId, log, 1, n);
      }
      expect(feedPavel.error, `${feedPavel.name} ended`).toBeUndefined();
      expectExactly(feedPavel, chatId, log, createdSeq + 1, n);

      // The fault really happened under load, and the log filled in while the bus was away.
      const duringFault = attempts.filter((attempt) => attempt.began >= faultAt && attempt.began < recoveryAt);
      expect(duringFault.filter((attempt) => attempt.outcome === "OK").length, `sends acknowledged during the ${fault}`).toBeGreaterThan(
        20,
      );
      seenAtFault.forEach((count, i) => {
        const name = onA[i]?.name ?? "";
        expect(seenBeforeRecovery[i] ?? 0, `${name}: events received from the log while NATS was away`).toBeGreaterThan(count);
      });
      // Sends during the fault succeed or fail fast with UNAVAILABLE; none waits for the bus.
      const slow = duringFault.filter((attempt) => attempt.ended - attempt.began > sendBound);
      expect(
        slow.map((attempt) => `${attempt.clientMessageId}: ${attempt.ended - attempt.began} ms ${attempt.outcome}`),
        `sends slower than ${sendBound} ms`,
      ).toEqual([]);
      expect(
        failed.filter((attempt) => !attempt.outcome.startsWith("Unavailable ")).map((attempt) => attempt.outcome),
        "failures other than UNAVAILABLE",
      ).toEqual([]);
      // Without a connection sends do not touch the bus: none fails at all (the retries above are
      // a safety net). A paused server holds the connection open, and may be refused fast instead.
      if (fault !== "pause") {
        expect(
          failed.map((attempt) => `${attempt.clientMessageId} ${attempt.outcome}`),
          `sends that failed while NATS was away (${fault})`,
        ).toEqual([]);
      }
      expect(sendMs).toBeLessThan(30_000);
      const latencies = duringFault.map((attempt) => attempt.ended - attempt.began).sort((x, y) => x - y);
      console.log(
        `NATS ${fault}: ${duringFault.length} sends during the fault, slowest ${latencies.at(-1)} ms, median ${latencies[Math.floor(latencies.length / 2)]} ms; ${failed.length} failed attempts`,
      );
    },
    60_000,
  );
});
