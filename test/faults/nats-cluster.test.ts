/**
 * Fault injection on a real NATS cluster: three `nats-server` processes clustered on loopback,
 * two Talkhub processes on one Postgres, A connected to one cluster member and B to another.
 * Under load (senders through both), the member A is connected to is SIGKILLed, then Talkhub
 * process B is SIGKILLed; B's watchers resume on A from their last seq (or cursor).
 *
 * With the log sweeps (gap check, membership re-check) slowed to ten minutes, far past this
 * file's run time, every event a watcher receives comes over the bus (or from a gap fill that
 * an event from the bus triggered, or from the log replay of a resumed stream). The test shows:
 * every acknowledged send stored exactly once; the event log contiguous; every watcher (B's
 * part and its resumed part on A together) with exactly the log, in order; A failed over to a
 * surviving member; and what was acknowledged after the failover reached the watchers within a
 * bound far below the sweep period, carried by the surviving members (a subscriber on another
 * member saw it).
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { connect } from "@nats-io/transport-node";
import type { Event, Heartbeat } from "../../gen/talk/v1/events_pb.js";
import { FeedWatcher, TalkWatcher } from "../support/live-helpers.js";
import { agentOn, expectLog, groupOnTwo } from "../support/two-process-scene.js";
import {
  ProcessSuite,
  createTestDatabase,
  dependenciesReachable,
  eventLog,
  expectContiguousLog,
  freePort,
  newPrefix,
  newSecret,
  sleep,
  spawnTalkhub,
  startNats,
  talkhubEnv,
  type Clients,
  type NatsServer,
  type TalkhubProcess,
} from "../support/processes.js";

const ready = await dependenciesReachable("nats-cluster", { postgres: true, natsServerBinary: true });

/** Far beyond this file's run time: nothing it waits for may come from a sweep. */
const slowSweep = "600000";
/** Sends in all, paced over ~10 s (one every `spacingMs`), by six senders. */
const total = 400;
const spacingMs = 25;
const senderCount = 6;
/** The NATS member dies once this many sends were acknowledged; Talkhub B once this many more. */
const ackedBeforeNatsKill = 60;
const ackedBeforeTalkhubKill = 80;
/**
 * How long after its acknowledgement an event may reach a watcher once A has failed over: far
 * below the ten-minute sweep, generous for a loaded 2-core machine.
 */
const busBound = 10_000;
/** How long A may take to be connected to a surviving member (it retries every 250 ms). */
const failoverBound = 15_000;

interface Member {
  readonly name: string;
  readonly server: NatsServer;
  readonly monitorPort: number;
}

/** GET a monitoring endpoint of a member as JSON (undefined when it does not answer). */
async function monitor<T>(member: Member, path: string): Promise<T | undefined> {
  try {
    const response = await fetch(`http://127.0.0.1:${member.monitorPort}${path}`, { signal: AbortSignal.timeout(2000) });
    return response.ok ? ((await response.json()) as T) : undefined;
  } catch {
    return undefined;
  }
}

/** How many Talkhub processes (connections named "talkhub") a member holds. */
async function talkhubConnections(member: Member): Promise<number> {
  const connz = await monitor<{ connections?: { name?: string }[] }>(member, "/connz?limit=1000");
  return (connz?.connections ?? []).filter((connection) => connection.name === "talkhub").length;
}

/** Three nats-servers in one cluster, each routing to the two others. */
async function startCluster(): Promise<Member[]> {
  const ports = await Promise.all(
    Array.from({ length: 3 }, async () => ({ client: await freePort(), cluster: await freePort(), monitor: await freePort() })),
  );
  return Promise.all(
    ports.map(async (port, i) => {
      const name = `member${i + 1}`;
      const routes = ports.filter((_, j) => j !== i).map((other) => `nats://127.0.0.1:${other.cluster}`);
      const server = await startNats(port.client, [
        "-n",
        name,
        "-m",
        String(port.monitor),
        "--cluster_name",
        "talkhub-test",
        "--cluster",
        `nats://127.0.0.1:${port.cluster}`,
        "--routes",
        routes.join(","),
      ]);
      return { name, server, monitorPort: port.monitor };
    }),
  );
}

/** When each event arrived, by seq (a watcher sees each seq of its talk once). */
type Arrivals = Map<number, number>;
/** A WatchTalk response as the live-helpers watchers receive it; WatchEvents adds the cursor. */
type TalkResponse = {
  kind: { case: "event"; value: Event } | { case: "heartbeat"; value: Heartbeat } | { case: undefined; value?: undefined };
};

class TimedTalkWatcher extends TalkWatcher {
  readonly arrivals: Arrivals = new Map();
  protected override onResponse(response: TalkResponse): void {
    super.onResponse(response);
    if (response.kind.case === "event") this.arrivals.set(Number(response.kind.value.seq), Date.now());
  }
}

class TimedFeedWatcher extends FeedWatcher {
  readonly arrivals: Arrivals = new Map();
  protected override onResponse(response: TalkResponse & { cursor: string }): void {
    super.onResponse(response);
    if (response.kind.case === "event") this.arrivals.set(Number(response.kind.value.seq), Date.now());
  }
}

describe.skipIf(!ready)("a three-member NATS cluster: a member and a Talkhub process SIGKILLed under load", () => {
  const secret = newSecret();
  const prefix = newPrefix();
  const suite = new ProcessSuite();
  const { on, database } = suite;
  let members: Member[] = [];
  let a: TalkhubProcess | undefined;
  let b: TalkhubProcess | undefined;
  /** The members A and B connected to at start. */
  let memberOfA: Member | undefined;
  let memberOfB: Member | undefined;
  const recorders: (TalkWatcher | FeedWatcher)[] = [];

  beforeAll(async () => {
    const db = (suite.db = await createTestDatabase());
    members = await startCluster();
    // The routes are up once every member sees the two others.
    await vi.waitFor(
      async () => {
        const counts = await Promise.all(
          members.map(async (member) => (await monitor<{ num_routes?: number }>(member, "/routez"))?.num_routes ?? 0),
        );
        if (counts.some((count) => count < 2)) throw new Error(`routes per member: ${counts.join(", ")}`);
      },
      { timeout: 20_000, interval: 100 },
    );
    const env = (natsUrl: string) => ({
      ...talkhubEnv({ databaseUrl: db.url, natsUrl, secret, prefix }),
      TALKHUB_GAP_CHECK_MS: slowSweep,
      TALKHUB_MEMBERSHIP_CHECK_MS: slowSweep,
    });
    const urls = members.map((member) => member.server.url);
    // Each process names its own member first, then the others, so it can fail over without
    // waiting for the cluster's gossip. The client shuffles the list (its default), so which
    // member each one took is read from the members' /connz: A is started alone first.
    a = await spawnTalkhub(env([urls[0], urls[1], urls[2]].join(",")), 60_000);
    suite.processes.push(a);
    const afterA = await Promise.all(members.map(talkhubConnections));
    memberOfA = members[afterA.indexOf(1)];
    b = await spawnTalkhub(env([urls[1], urls[2], urls[0]].join(",")), 60_000);
    suite.processes.push(b);
    const afterB = await Promise.all(members.map(talkhubConnections));
    memberOfB = members[afterB.findIndex((count, i) => count > (afterA[i] ?? 0))];
    expect(
      afterA.reduce((sum, n) => sum + n, 0),
      `talkhub connections after A started: ${afterA.join(", ")}`,
    ).toBe(1);
    expect(
      afterB.reduce((sum, n) => sum + n, 0),
      `talkhub connections after B started: ${afterB.join(", ")}`,
    ).toBe(2);
  }, 120_000);

  afterAll(async () => {
    await Promise.all(recorders.map((recorder) => recorder.abort()));
    // Every Talkhub process and nats-server this file started is SIGKILLed by PID in here.
    await suite.close();
    await Promise.all(members.map((member) => member.server.kill()));
  }, 60_000);

  it("every acknowledged send reaches every watcher exactly once, in order, over the surviving members", async () => {
    const talkhubA = a;
    const killed = b;
    const natsVictim = memberOfA;
    if (talkhubA === undefined || killed === undefined || natsVictim === undefined || memberOfB === undefined)
      throw new Error("not started");
    const survivors = members.filter((member) => member !== natsVictim);
    // The bus is observed on a surviving member, preferably one neither process started on, so
    // what it sees crossed a route.
    const tapMember = survivors.find((member) => member !== memberOfB) ?? (survivors[0] as Member);

    const { customer, agents, olga, pavel, quinn, onA, onB, chatId, createdSeq } = await groupOnTwo(secret, on, talkhubA, killed);

    const track = <W extends TalkWatcher | FeedWatcher>(watcher: W): W => {
      recorders.push(watcher);
      return watcher;
    };
    // On A: Olga's WatchTalk from 0 and Pavel's feed. On B: Quinn's WatchTalk from 0 and feed.
    const talkOnA = track(new TimedTalkWatcher(agentOn(olga, onA[0] as Clients), chatId, 0));
    const feedOnA = track(new TimedFeedWatcher(agentOn(pavel, onA[1] as Clients)));
    const talkOnB = track(new TimedTalkWatcher(agentOn(quinn, onB[2] as Clients), chatId, 0));
    const feedOnB = track(new TimedFeedWatcher(agentOn(quinn, onB[2] as Clients)));
    await Promise.all([
      talkOnA.waitSeq(createdSeq, 20_000),
      talkOnB.waitSeq(createdSeq, 20_000),
      feedOnA.ready(20_000),
      feedOnB.ready(20_000),
    ]);

    // Talk events as the surviving cluster carries them: seq -> when seen.
    const carried = new Map<number, number>();
    const tap = await connect({ servers: tapMember.server.url, name: "nats-cluster tap" });
    tap.subscribe(`${prefix}.talk.${customer}.${chatId}`, {
      callback: (_error, msg) => void carried.set(msg.json<{ seq: number }>().seq, Date.now()),
    });
    await tap.flush();

    // Senders 0-2 through A, 3-5 through B (through A once B is dead); send i starts no earlier
    // than t0 + i * spacing. A failed send is retried with the same client_message_id (at most
    // 20 attempts within 30 s).
    let bAlive = true;
    let aborted = false;
    const acked = new Map<string, { id: string; seq: number; via: "A" | "B"; at: number }>();
    const failures: { clientMessageId: string; code: string; at: number }[] = [];
    const abandoned: string[] = [];
    const send = async (i: number) => {
      const clientMessageId = `nc-${i}`;
      const sender = i % senderCount;
      const agentIndex = sender % agents.length;
      const deadline = Date.now() + 30_000;
      for (let attempt = 1; attempt <= 20 && Date.now() < deadline && !aborted; attempt++) {
        const via = sender >= agents.length && bAlive ? "B" : "A";
        const clients = (via === "B" ? onB : onA)[agentIndex] as Clients;
        try {
          const response = await clients.messages.sendMessage({ chatId, text: `message ${i}`, clientMessageId }, { timeoutMs: 10_000 });
          acked.set(clientMessageId, { id: response.message?.id ?? "", seq: Number(response.message?.seq ?? 0n), via, at: Date.now() });
          return;
        } catch (reason) {
          failures.push({ clientMessageId, code: Code[ConnectError.from(reason).code], at: Date.now() });
          await sleep(100);
        }
      }
      abandoned.push(clientMessageId);
    };
    const t0 = Date.now();
    const load = Array.from({ length: senderCount }, async (_, k) => {
      for (let i = k; i < total && !aborted; i += senderCount) {
        await sleep(Math.max(0, t0 + i * spacingMs - Date.now()));
        await send(i);
      }
    });

    const waitAcked = (count: number, what: string) =>
      vi.waitFor(
        () => {
          if (acked.size < count) throw new Error(`${acked.size} of ${count} sends acknowledged before ${what}`);
        },
        { timeout: 30_000, interval: 20 },
      );

    try {
      // 1. The member A is connected to dies.
      await waitAcked(ackedBeforeNatsKill, "the NATS kill");
      const natsKilledAt = Date.now();
      const natsPid = natsVictim.server.pid;
      await natsVictim.server.kill();
      expect(natsVictim.server.pid, `${natsVictim.name} (pid ${natsPid}) is dead`).toBeUndefined();
      // Both processes are connected to the surviving members again (A moved; B too if it was
      // on the same member).
      await vi.waitFor(
        async () => {
          const counts = await Promise.all(survivors.map(talkhubConnections));
          if (counts.reduce((sum, n) => sum + n, 0) < 2) throw new Error(`talkhub connections on the survivors: ${counts.join(", ")}`);
        },
        { timeout: failoverBound, interval: 100 },
      );
      const failedOverAt = Date.now();
      const ackedAtFailover = acked.size;

      // 2. Talkhub B dies once more sends went through both over the survivors.
      await waitAcked(ackedAtFailover + ackedBeforeTalkhubKill, "the Talkhub kill");
      bAlive = false;
      const bKilledAt = Date.now();
      await killed.kill();
      expect(killed.exited, "B is dead").toBe(true);
      await Promise.all([talkOnB.waitEnd(10_000), feedOnB.waitEnd(10_000)]);
      expect(feedOnB.cursor, "B's feed had a cursor to resume from").not.toBe("");
      // B's watchers resume on A from what they received.
      const resumedTalk = track(new TimedTalkWatcher(agentOn(quinn, onA[2] as Clients), chatId, talkOnB.lastSeq));
      const resumedFeed = track(new TimedFeedWatcher(agentOn(quinn, onA[2] as Clients), feedOnB.cursor));
      const resumedAt = Date.now();

      await Promise.all(load);
      const sendMs = Date.now() - t0;

      // Every watcher on A reaches the head.
      const head = Number(
        (await database().query<{ last_seq: string }>("SELECT last_seq FROM talks WHERE id = $1", [chatId]))[0]?.last_seq,
      );
      const onAWatchers = [talkOnA, feedOnA, resumedTalk, resumedFeed];
      const lastOf = (watcher: TalkWatcher | FeedWatcher) =>
        Number(watcher.events.filter((event) => event.chatId === chatId).at(-1)?.seq ?? 0n);
      await vi.waitFor(
        () => {
          const behind = onAWatchers.filter((watcher) => lastOf(watcher) < head || watcher.ended);
          if (behind.length > 0) throw new Error(`not at seq ${head}: ${onAWatchers.map((w) => w.describe()).join("; ")}`);
        },
        { timeout: busBound, interval: 50 },
      );

      const log = await eventLog(database(), chatId);
      const n = expectContiguousLog(log);
      expect(n).toBe(head);

      // Every send was acknowledged, and is stored exactly once, as acknowledged.
      expect(abandoned, "sends given up after 30 s of retries").toEqual([]);
      expect(acked.size, "acknowledged sends").toBe(total);
      const rows = await database().query<{ id: string; seq: string; client_message_id: string }>(
        "SELECT id, seq, client_message_id FROM messages WHERE chat_id = $1 AND client_message_id IS NOT NULL",
        [chatId],
      );
      expect(rows.length, "stored messages with a client_message_id").toBe(total);
      const stored = new Map(rows.map((row) => [row.client_message_id, { id: row.id, seq: Number(row.seq) }]));
      expect(stored.size, "distinct client_message_ids").toBe(total);
      for (const [clientMessageId, sent] of acked)
        expect(stored.get(clientMessageId), clientMessageId).toEqual({ id: sent.id, seq: sent.seq });
      expect(n, "the log: creation plus one event per send").toBe(createdSeq + total);

      // Every watcher has exactly the log, in order; B's watchers together with their resumed part.
      for (const watcher of onAWatchers) expect(watcher.error, `watcher on A ended: ${watcher.describe()}`).toBeUndefined();
      expectLog("Olga's WatchTalk on A", talkOnA.events, log, 1, n);
      expectLog("Pavel's WatchEvents on A", feedOnA.of(chatId), log, createdSeq + 1, n);
      expectLog("Quinn's WatchTalk, B then A", [...talkOnB.events, ...resumedTalk.events], log, 1, n);
      expectLog("Quinn's WatchEvents, B then A", [...feedOnB.of(chatId), ...resumedFeed.of(chatId)], log, createdSeq + 1, n);
      expect(feedOnB.of(chatId).length, "Quinn's feed events on B before the kill").toBeGreaterThan(0);
      expect(resumedTalk.events.length, "Quinn's WatchTalk events on A after the resume").toBeGreaterThan(0);

      // Delivery after the failover went over the surviving cluster, within a bound far below
      // the sweep period: every send acknowledged after it reached every watcher on A in time,
      // and each one A acknowledged (and each B acknowledged well before its kill) was seen on
      // the subscriber of a surviving member.
      const afterFailover = [...acked.values()].filter((sent) => sent.at >= failedOverAt);
      expect(afterFailover.length, "sends acknowledged after the failover").toBeGreaterThan(ackedBeforeTalkhubKill);
      const latencies: number[] = [];
      const late: string[] = [];
      // A resumed stream's replay of the log is no live delivery: for it, only the sends
      // acknowledged after it opened count.
      for (const [label, watcher, since] of [
        ["Olga's WatchTalk on A", talkOnA, failedOverAt],
        ["Pavel's WatchEvents on A", feedOnA, failedOverAt],
        ["Quinn's resumed WatchTalk", resumedTalk, resumedAt],
        ["Quinn's resumed WatchEvents", resumedFeed, resumedAt],
      ] as const) {
        for (const sent of afterFailover.filter((entry) => entry.at >= since)) {
          const arrived = watcher.arrivals.get(sent.seq);
          if (arrived === undefined) {
            late.push(`${label} seq ${sent.seq}: never arrived`);
            continue;
          }
          const latency = Math.max(0, arrived - sent.at);
          latencies.push(latency);
          if (latency > busBound) late.push(`${label} seq ${sent.seq}: ${latency} ms`);
        }
      }
      expect(late, `events later than ${busBound} ms after their acknowledgement`).toEqual([]);
      const mustBeCarried = afterFailover.filter((sent) => sent.via === "A" || sent.at < bKilledAt - 1000).map((sent) => sent.seq);
      await vi.waitFor(
        () => {
          const missing = mustBeCarried.filter((seq) => !carried.has(seq));
          if (missing.length > 0)
            throw new Error(`not carried by ${tapMember.name}: ${missing.slice(0, 10).join(", ")} (${missing.length})`);
        },
        { timeout: 5_000, interval: 50 },
      );
      expect(talkhubA.exited, "A is still running").toBe(false);

      latencies.sort((x, y) => x - y);
      console.log(
        `nats-cluster: A on ${natsVictim.name} (SIGKILLed, pid ${natsPid}), B on ${memberOfB.name}, tap on ${tapMember.name}; ` +
          `A failed over in ${failedOverAt - natsKilledAt} ms (${ackedAtFailover} acked by then); B SIGKILLed at ${bKilledAt - t0} ms; ` +
          `${total} sends in ${sendMs} ms, ${failures.length} failed attempts retried; log ${n} events; ` +
          `delivery after the failover: median ${latencies[Math.floor(latencies.length / 2)]} ms, max ${latencies.at(-1)} ms over ${latencies.length} deliveries; ` +
          `${mustBeCarried.length} events checked on the tap`,
      );
    } finally {
      aborted = true;
      bAlive = false;
      await Promise.all(load);
      await tap.close();
    }
  }, 120_000);
});
