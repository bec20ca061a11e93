/**
 * Fault injection: process B is SIGKILLed in the middle of a load and a new B is started. Events
 * B committed but never published (it died first) still reach the watchers on A, from the log;
 * every acknowledged send is in the database exactly once, and retries never duplicate.
 *
 * B reaches NATS through a link the test stalls just before the kill, so that the kill lands
 * for certain between commits and their publishes: a tap on the prefix shows which committed
 * events the bus never carried, and the watchers on A must have them all the same.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { connect } from "@nats-io/transport-node";
import { stallableLink, type StallableLink } from "../support/stallable-link.js";
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
  sharedNatsUrl,
  sleep,
  talkhubEnv,
  watchEvents,
  watchersReached,
  watchTalk,
  type AgentIdentity,
  type Clients,
  type TalkhubProcess,
} from "../support/processes.js";

const ready = await dependenciesReachable("fault-kill", { postgres: true, sharedNats: true });

const concurrency = 8;
const maxPerSender = 400;
/** B is killed once this many sends were acknowledged. */
const killAtAcked = 40;
/** The load stops once the new B has acknowledged this many sends. */
const ackedByNewB = 30;

/** Waits (at most `timeout` ms) until `count()` reaches `atLeast`. */
async function reachCount(what: string, count: () => number, atLeast: number, timeout: number): Promise<void> {
  await vi.waitFor(
    () => {
      if (count() < atLeast) throw new Error(`${what}: ${count()} of ${atLeast}`);
    },
    { timeout, interval: 20 },
  );
}

describe.skipIf(!ready)("SIGKILL of a process under load", () => {
  const secret = newSecret();
  const prefix = newPrefix();
  let env: Record<string, string> = {};
  let link: StallableLink | undefined;
  let a: TalkhubProcess | undefined;
  const bs: TalkhubProcess[] = [];
  const suite = new ProcessSuite();
  const { on, keep, database } = suite;

  beforeAll(async () => {
    const db = (suite.db = await createTestDatabase());
    link = await stallableLink(Number(new URL(sharedNatsUrl).port || "4222"));
    // B (and the B started after the kill) reach NATS through the link; A directly.
    env = talkhubEnv({ databaseUrl: db.url, natsUrl: `nats://127.0.0.1:${link.port}`, secret, prefix });
    const [[first], [second]] = await Promise.all([
      suite.spawn(1, talkhubEnv({ databaseUrl: db.url, natsUrl: sharedNatsUrl, secret, prefix })),
      suite.spawn(1, env),
    ]);
    a = first;
    if (second !== undefined) bs.push(second);
  }, 60_000);

  afterAll(async () => {
    await suite.close();
    await link?.close();
  }, 60_000);

  it("watchers on A get every committed event, and acknowledged sends exist exactly once", async () => {
    const firstB = bs[0];
    if (firstB === undefined) throw new Error("B not started");
    const customer = randomUUID();
    const agents = (await Promise.all(["Olga", "Pavel", "Quinn"].map((name) => newAgent(secret, customer, name)))) as [
      AgentIdentity,
      AgentIdentity,
      AgentIdentity,
    ];
    const [olga, pavel, quinn] = agents;
    // The clients senders use: those of the B running now.
    let current = agents.map((agent) => on(firstB, agent));
    let generation = 0;
    await Promise.all(current.map((clients) => clients.talks.listTalks({})));
    const created = await (current[0] as Clients).talks.createTalk({ type: "group", participantIds: [pavel.id, quinn.id] });
    const chatId = created.talk?.id ?? "";
    const createdSeq = Number(created.talk?.lastSeq ?? 0n);
    // A second talk gets messages only until the kill: if B's last publishes for it were lost,
    // nothing later on the bus reveals the gap, and only the periodic head check can fill it.
    const quiet = await (current[1] as Clients).talks.createTalk({ type: "group", participantIds: [olga.id, quinn.id] });
    const quietId = quiet.talk?.id ?? "";
    const quietCreatedSeq = Number(quiet.talk?.lastSeq ?? 0n);

    const talkWatchers = [
      keep(watchTalk("A WatchTalk Olga", on(a, olga), chatId, 0)),
      keep(watchTalk("A WatchTalk Pavel", on(a, pavel), chatId, 0)),
      keep(watchTalk("A WatchTalk Quinn", on(a, quinn), chatId, 0)),
    ];
    const quietWatchers = [
      keep(watchTalk("A WatchTalk Olga (quiet talk)", on(a, olga), quietId, 0)),
      keep(watchTalk("A WatchTalk Quinn (quiet talk)", on(a, quinn), quietId, 0)),
    ];
    const feedPavel = keep(watchEvents("A WatchEvents Pavel", on(a, pavel)));
    const all = [...talkWatchers, feedPavel];
    await Promise.all([...all, ...quietWatchers].map((watcher) => watcher.started()));
    // What the bus carried: every talk event published under the prefix, as talk#seq.
    const carried = new Set<string>();
    const tap = await connect({ servers: sharedNatsUrl, name: "fault-kill tap" });
    tap.subscribe(`${prefix}.talk.>`, {
      callback: (_error, msg) => {
        const event = msg.json<{ chatId: string; seq: number }>();
        carried.add(`${event.chatId}#${event.seq}`);
      },
    });
    await tap.flush();

    // The load: 8 senders through B, each sending one message after another. A send whose
    // outcome is unknown (error) is retried with the same client_message_id, against whichever
    // B runs by then; it gives up after 30 s.
    let stopping = false;
    let killed = false;
    /** Set when the fault injection itself failed: the senders give up at once. */
    let aborted = false;
    const attempted = new Set<string>();
    const acked = new Map<
      string,
      { id: string; seq: number; text: string; ownerId: string; at: number; generation: number; talkId: string; startedAt: number }
    >();
    const failures: { clientMessageId: string; code: string; at: number }[] = [];
    const abandoned: string[] = [];
    /** Sends to the quiet talk that failed at the kill and were not retried: either outcome is right. */
    const unknown: string[] = [];
    const sendOne = async (sender: number, talkId: string, clientMessageId: string, text: string) => {
      attempted.add(clientMessageId);
      const deadline = Date.now() + 30_000;
      for (let attempt = 1; attempt <= 200 && Date.now() < deadline && !aborted; attempt++) {
        const usedGeneration = generation;
        const clients = current[sender % current.length] as Clients;
        const startedAt = Date.now();
        try {
          const response = await clients.messages.sendMessage({ chatId: talkId, text, clientMessageId }, { timeoutMs: 5000 });
          const message = response.message;
          acked.set(clientMessageId, {
            id: message?.id ?? "",
            seq: Number(message?.seq ?? 0n),
            // What was sent, by whom: the stored row must be this caller's own message.
            text,
            ownerId: (agents[sender % agents.length] as AgentIdentity).id,
            at: Date.now(),
            generation: usedGeneration,
            talkId,
            startedAt,
          });
          return;
        } catch (reason) {
          failures.push({ clientMessageId, code: Code[ConnectError.from(reason).code], at: Date.now() });
          if (talkId === quietId && killed) {
            // Retrying through the new B would publish a later event of the quiet talk.
            unknown.push(clientMessageId);
            return;
          }
          await sleep(100);
        }
      }
      abandoned.push(clientMessageId);
    };
    // Senders 6 and 7 send to the quiet talk until B is killed, then to the main talk.
    const load = Array.from({ length: concurrency }, async (_, sender) => {
      for (let j = 0; j < maxPerSender && !stopping; j++) {
        const target = sender >= concurrency - 2 && !killed ? quietId : chatId;
        await sendOne(sender, target, `fk-${sender}-${j}`, `sender ${sender} message ${j}`);
      }
    });

    // The fault: SIGKILL B mid-load, start a new B, send until it has acknowledged enough, stop.
    const fault = (async () => {
      try {
        await reachCount("sends acknowledged before the kill", () => acked.size, killAtAcked, 20_000);
        // Stall B's link to NATS until B has acknowledged sends to both talks begun after the
        // stall: those were committed, and their publishes can no longer reach the bus.
        const stalledAt = Date.now();
        link?.stall();
        const sentAfterStall = (talkId: string) => [...acked.values()].some((s) => s.talkId === talkId && s.startedAt > stalledAt);
        if (
          !(await vi
            .waitFor(
              async () => {
                if (!(sentAfterStall(chatId) && sentAfterStall(quietId))) throw new Error("not yet");
              },
              { timeout: 10_000, interval: 50 },
            )
            .then(
              () => true,
              () => false,
            ))
        ) {
          throw new Error("no send to each talk was acknowledged after the link stalled");
        }
        const ackedBeforeKill = acked.size;
        killed = true;
        const killedAt = Date.now();
        await firstB.kill();
        // What B wrote to the stalled link dies with it.
        link?.cut();
        const [secondB] = await suite.spawn(1, env);
        if (secondB === undefined) throw new Error("B did not restart");
        bs.push(secondB);
        const stale = current;
        current = agents.map((agent) => on(secondB, agent));
        generation = 1;
        for (const clients of stale) clients.close();
        const restartedAt = Date.now();
        await reachCount(
          "sends acknowledged by the new B",
          () => [...acked.values()].filter((sent) => sent.generation === 1).length,
          ackedByNewB,
          20_000,
        );
        return { ackedBeforeKill, killedAt, restartedAt };
      } catch (error) {
        aborted = true;
        throw error;
      } finally {
        stopping = true;
      }
    })();

    const { ackedBeforeKill, killedAt, restartedAt } = await fault;
    await Promise.all(load);
    const loadStoppedAt = Date.now();

    // Within 5 s of the load stopping, A's watchers have the whole log.
    const headOf = async (talkId: string) =>
      Number((await database().query<{ last_seq: string }>("SELECT last_seq FROM talks WHERE id = $1", [talkId]))[0]?.last_seq);
    const head = await headOf(chatId);
    const quietHead = await headOf(quietId);
    const caughtUp = await vi
      .waitFor(
        async () => {
          if (!(watchersReached(all, chatId, () => head) && watchersReached([...quietWatchers, feedPavel], quietId, () => quietHead)))
            throw new Error("not yet");
        },
        { timeout: Math.max(0, loadStoppedAt + 5000 - Date.now()), interval: 50 },
      )
      .then(
        () => true,
        () => false,
      );
    const caughtUpMs = Date.now() - loadStoppedAt;
    await tap.flush();
    await tap.close();

    const log = await eventLog(database(), chatId);
    const n = expectContiguousLog(log);
    expect(n).toBe(head);
    const quietLog = await eventLog(database(), quietId);
    const quietN = expectContiguousLog(quietLog);
    expect(quietN).toBe(quietHead);
    expect(quietN, "messages in the quiet talk").toBeGreaterThan(quietCreatedSeq + 5);
    // Events committed but never published: B died between their commit and their publish.
    const neverCarried = [
      ...log.filter((e) => e.seq > createdSeq && !carried.has(`${chatId}#${e.seq}`)).map((e) => `${chatId}#${e.seq}`),
      ...quietLog.filter((e) => e.seq > quietCreatedSeq && !carried.has(`${quietId}#${e.seq}`)).map((e) => `${quietId}#${e.seq}`),
    ];
    // The kill landed between commits and publishes: acknowledged sends the bus never carried
    // (A's watchers must have them from the log), the quiet talk's last event among them.
    const ackedNeverCarried = [...acked.values()].filter((s) => s.generation === 0 && neverCarried.includes(`${s.talkId}#${s.seq}`));
    expect(ackedNeverCarried.length, `acknowledged sends never carried by the bus (of ${neverCarried.length} events)`).toBeGreaterThan(0);
    expect(carried.has(`${quietId}#${quietN}`), "the quiet talk's last event went over the bus").toBe(false);

    // The fault hit the load: sends were acknowledged before the kill, failed at the kill,
    // and were acknowledged by the new B.
    expect(ackedBeforeKill, "sends acknowledged before the kill").toBeGreaterThan(10);
    expect(failures.filter((f) => f.at >= killedAt && f.at <= restartedAt).length, "sends failing while B was down").toBeGreaterThan(0);
    expect([...acked.values()].filter((s) => s.generation === 1).length, "sends acknowledged by the new B").toBeGreaterThan(10);
    expect(abandoned, "sends given up after 30 s of retries").toEqual([]);

    // Acknowledged sends exist exactly once, as acknowledged; nothing else is there.
    const rows = await database().query<{ id: string; seq: string; client_message_id: string; text: string; owner_id: string }>(
      "SELECT id, seq, client_message_id, text, owner_id FROM messages WHERE chat_id = ANY($1::uuid[]) AND client_message_id IS NOT NULL",
      [[chatId, quietId]],
    );
    const rowsByClientId = new Map<string, { id: string; seq: number; text: string; ownerId: string }[]>();
    for (const row of rows) {
      const list = rowsByClientId.get(row.client_message_id) ?? [];
      list.push({ id: row.id, seq: Number(row.seq), text: row.text, ownerId: row.owner_id });
      rowsByClientId.set(row.client_message_id, list);
    }
    for (const [clientMessageId, sent] of acked) {
      expect(rowsByClientId.get(clientMessageId), `acknowledged send ${clientMessageId}`).toEqual([
        { id: sent.id, seq: sent.seq, text: sent.text, ownerId: sent.ownerId },
      ]);
    }
    for (const [clientMessageId, list] of rowsByClientId) {
      expect(attempted.has(clientMessageId), `${clientMessageId} was sent`).toBe(true);
      expect(list, `${clientMessageId} is stored once`).toHaveLength(1);
    }
    // Every other send was retried until acknowledged.
    expect(acked.size + unknown.length).toBe(attempted.size);
    expect(rows.length).toBeGreaterThanOrEqual(acked.size);
    expect(rows.length).toBeLessThanOrEqual(acked.size + unknown.length);
    expect(n - createdSeq + (quietN - quietCreatedSeq)).toBe(rows.length);

    // The watchers on A: exactly the log, in order, no duplicate, within 5 s of the load stopping.
    const progress = [...all, ...quietWatchers].map((w) => `${w.name}: ${w.events.length} events, last seq ${w.events.at(-1)?.seq}`);
    expect(
      caughtUp,
      `watchers on A caught up with seq ${head} (quiet talk ${quietHead}) within 5 s (after ${caughtUpMs} ms); ${progress.join("; ")}`,
    ).toBe(true);
    for (const watcher of talkWatchers) {
      expect(watcher.error, `${watcher.name} ended`).toBeUndefined();
      expectExactly(watcher, chatId, log, 1, n);
    }
    expect(feedPavel.error, `${feedPavel.name} ended`).toBeUndefined();
    expectExactly(feedPavel, chatId, log, createdSeq + 1, n);
    for (const watcher of quietWatchers) {
      expect(watcher.error, `${watcher.name} ended`).toBeUndefined();
      expectExactly(watcher, quietId, quietLog, 1, quietN);
    }
    expectExactly(feedPavel, quietId, quietLog, quietCreatedSeq + 1, quietN);
    expect(a?.exited, "A is still running").toBe(false);
  }, 60_000);
});
