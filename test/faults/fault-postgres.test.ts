/**
 * Fault injection: the database goes away. A private Postgres (initdb in a temp dir, its own
 * port) is stopped with `pg_ctl stop -m immediate` in the middle of a steady load, stays down
 * for 5 s, and is started again; Talkhub keeps running throughout.
 *
 * While it is down, calls fail fast with UNAVAILABLE (never INTERNAL or UNKNOWN) and /readyz is
 * 503; once it is back, sends succeed again by themselves, without restarting Talkhub. Sends
 * whose outcome was unknown are retried with the same client_message_id, so every acknowledged
 * message exists exactly once; a watcher that resumes with after_seq after stream errors ends
 * with every event of the talk, in order, without gap or duplicate.
 */
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync, readdirSync } from "node:fs";
import { chown, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  clientsFor,
  dependenciesReachable,
  describeSeqs,
  eventLog,
  expectContiguousLog,
  freePort,
  killAllChildren,
  newAgent,
  newPrefix,
  newSecret,
  range,
  sharedNatsUrl,
  sleep,
  spawnTalkhub,
  talkhubEnv,
  type AgentIdentity,
  type Clients,
  type TalkhubProcess,
  type TestDatabase,
} from "../support/processes.js";

const run = promisify(execFile);

/** Waits (at most `timeout` ms) until `count()` reaches `atLeast`. */
async function reachCount(what: string, count: () => number, atLeast: number, timeout: number): Promise<void> {
  await vi.waitFor(
    () => {
      if (count() < atLeast) throw new Error(`${what}: ${count()} of ${atLeast}`);
    },
    { timeout, interval: 20 },
  );
}

const senders = 3;
/** Postgres crashes once this many sends were acknowledged. */
const ackedBeforeOutage = 20;
const outageMs = 5000;
/** After the first post-restart success of every sender, the load goes on until this many more were acknowledged. */
const ackedAfterRecovery = 20;
/** A failing call must answer within this (the pool's connection timeout is 5 s). */
const failFastMs = 6000;
/** Sends succeed again within this of Postgres accepting connections. */
const recoveryBoundMs = 10_000;
/** Every 4th acknowledged send is sent again as if its reply had been lost. */
const replayEvery = 4;

/** The newest installed Postgres server binaries, e.g. /usr/lib/postgresql/15/bin. */
function postgresBin(): string | undefined {
  const root = "/usr/lib/postgresql";
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, "bin", "pg_ctl")) && existsSync(join(root, v, "bin", "initdb")))
    .sort((x, y) => Number(y) - Number(x));
  return versions[0] === undefined ? undefined : join(root, versions[0], "bin");
}

const bin = postgresBin();
const binariesOk = bin !== undefined && existsSync("/usr/sbin/runuser");
if (!binariesOk) {
  const problem = "POSTGRES BINARIES UNREACHABLE: no /usr/lib/postgresql/<version>/bin/{initdb,pg_ctl} or no runuser";
  if (process.env["CI"] === "true") throw new Error(`fault-postgres: ${problem} (CI=true makes this fatal)`);
  console.warn(`!!! ${problem}: fault-postgres suite SKIPPED (set CI=true to make this fail)`);
}
const ready = binariesOk && (await dependenciesReachable("fault-postgres", { sharedNats: true }));

/** A Postgres server of this test's own, run as the postgres OS user (initdb refuses root). */
interface PrivatePostgres {
  readonly port: number;
  readonly url: string;
  start(): Promise<void>;
  /** `pg_ctl stop -m immediate`: the server processes quit at once, as in a crash. */
  crash(): Promise<void>;
  /** Stops it (if running) and removes its directory. */
  destroy(): Promise<void>;
  log(): Promise<string>;
}

async function createPrivatePostgres(binDir: string): Promise<PrivatePostgres> {
  const dir = await mkdtemp(join(tmpdir(), "talkhub-fault-pg-"));
  const data = join(dir, "data");
  const logFile = join(dir, "log");
  const { stdout: uid } = await run("id", ["-u", "postgres"], { timeout: 10_000 });
  const { stdout: gid } = await run("id", ["-g", "postgres"], { timeout: 10_000 });
  await chown(dir, Number(uid.trim()), Number(gid.trim()));
  const asPostgres = (command: string, args: string[], timeout: number) =>
    run("runuser", ["-u", "postgres", "--", join(binDir, command), ...args], { timeout, cwd: dir });
  await asPostgres("initdb", ["-D", data, "-U", "postgres", "--auth=trust", "--no-sync"], 120_000);
  const port = await freePort();
  let running = false;
  const self: PrivatePostgres = {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    start: async () => {
      await asPostgres(
        "pg_ctl",
        ["-D", data, "-o", `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1`, "-l", logFile, "-w", "-t", "60", "start"],
        90_000,
      );
      running = true;
    },
    crash: async () => {
      await asPostgres("pg_ctl", ["-D", data, "-m", "immediate", "-w", "-t", "30", "stop"], 60_000);
      running = false;
    },
    destroy: async () => {
      if (running || existsSync(join(data, "postmaster.pid"))) {
        try {
          await asPostgres("pg_ctl", ["-D", data, "-m", "immediate", "-w", "-t", "30", "stop"], 60_000);
        } catch {
          // pg_ctl could not stop it: SIGKILL the postmaster we started, by its PID.
          const pid = Number((await readFile(join(data, "postmaster.pid"), "utf8").catch(() => "")).split("\n")[0]);
          if (Number.isInteger(pid) && pid > 1) {
            try {
              process.kill(pid, "SIGKILL");
            } catch {
              // gone already
            }
          }
        }
      }
      running = false;
      await rm(dir, { recursive: true, force: true });
    },
    log: () => readFile(logFile, "utf8").catch(() => ""),
  };
  return self;
}

/** A TestDatabase view of the private server, for the event-log helpers. */
function databaseView(url: string): TestDatabase & { end(): Promise<void> } {
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  pool.on("error", () => undefined);
  return {
    name: "postgres",
    url,
    query: async <R extends Record<string, unknown>>(sql: string, params: unknown[] = []) => (await pool.query<R>(sql, params)).rows,
    drop: async () => undefined,
    end: () => pool.end().catch(() => undefined),
  };
}

interface ResumingWatcher {
  readonly events: { seq: number; type: string }[];
  /** Stream errors (code names), each followed by a resume with after_seq. */
  readonly errors: { code: string; message: string }[];
  readonly openings: number;
  stop(): Promise<void>;
}

/** WatchTalk that, on any stream error, opens again with after_seq = the last seq received. */
function resumingWatch(clients: Clients, chatId: string): ResumingWatcher {
  const events: { seq: number; type: string }[] = [];
  const errors: { code: string; message: string }[] = [];
  let openings = 0;
  let stopped = false;
  let current: AbortController | undefined;
  const hardDeadline = Date.now() + 120_000;
  const done = (async () => {
    while (!stopped && openings < 1000 && Date.now() < hardDeadline) {
      const controller = new AbortController();
      current = controller;
      openings++;
      const afterSeq = events.at(-1)?.seq ?? 0;
      try {
        for await (const response of clients.talks.watchTalk({ chatId, afterSeq: BigInt(afterSeq) }, { signal: controller.signal })) {
          if (response.kind.case === "event") events.push({ seq: Number(response.kind.value.seq), type: response.kind.value.type });
        }
        if (!controller.signal.aborted) errors.push({ code: "ended without an error", message: "" });
      } catch (reason) {
        if (!controller.signal.aborted) {
          const error = ConnectError.from(reason);
          errors.push({ code: Code[error.code] ?? String(error.code), message: error.rawMessage });
        }
      }
      if (!stopped) await sleep(250);
    }
  })();
  return {
    events,
    errors,
    get openings() {
      return openings;
    },
    stop: async () => {
      stopped = true;
      current?.abort();
      await Promise.race([done, sleep(5000)]);
    },
  };
}

/** The status of GET /readyz, or a description of why there was none within 5 s. */
async function readyz(url: string): Promise<number | string> {
  const startedAt = Date.now();
  try {
    return (await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(5000) })).status;
  } catch (error) {
    const cause = error instanceof Error && error.cause !== undefined ? ` (${String(error.cause)})` : "";
    return `no answer after ${Date.now() - startedAt} ms: ${String(error)}${cause}`;
  }
}

describe.skipIf(!ready)("a Postgres outage under load", () => {
  const secret = newSecret();
  const prefix = newPrefix();
  let postgres: PrivatePostgres | undefined;
  let db: (TestDatabase & { end(): Promise<void> }) | undefined;
  let talkhub: TalkhubProcess | undefined;
  const opened: Clients[] = [];
  let watcher: ResumingWatcher | undefined;

  beforeAll(async () => {
    postgres = await createPrivatePostgres(bin ?? "");
    await postgres.start();
    db = databaseView(postgres.url);
    talkhub = await spawnTalkhub(talkhubEnv({ databaseUrl: postgres.url, natsUrl: sharedNatsUrl, secret, prefix }));
  }, 180_000);

  afterAll(async () => {
    await watcher?.stop();
    for (const clients of opened) clients.close();
    await talkhub?.stop();
    await killAllChildren();
    await db?.end();
    await postgres?.destroy();
  }, 120_000);

  it("fails fast with UNAVAILABLE while down, recovers by itself, loses and duplicates nothing", async () => {
    if (postgres === undefined || talkhub === undefined || db === undefined) throw new Error("not started");
    const server = postgres;
    const process_ = talkhub;
    const database = db;
    const customer = randomUUID();
    const agents = (await Promise.all(["Olga", "Pavel", "Quinn"].map((name) => newAgent(secret, customer, name)))) as [
      AgentIdentity,
      AgentIdentity,
      AgentIdentity,
    ];
    const clients = agents.map((agent) => {
      const c = clientsFor(process_.url, agent.token);
      opened.push(c);
      return c;
    });
    await Promise.all(clients.map((c) => c.talks.listTalks({})));
    const created = await (clients[0] as Clients).talks.createTalk({ type: "group", participantIds: [agents[1].id, agents[2].id] });
    const chatId = created.talk?.id ?? "";
    const createdSeq = Number(created.talk?.lastSeq ?? 0n);
    expect(createdSeq).toBeGreaterThan(0);
    expect(await readyz(process_.url), "/readyz before the outage").toBe(200);

    watcher = resumingWatch(clients[0] as Clients, chatId);
    const watching = watcher;
    expect(
      await vi
        .waitFor(
          async () => {
            if (!(watching.events.length >= createdSeq)) throw new Error("not yet");
          },
          { timeout: 10_000, interval: 50 },
        )
        .then(
          () => true,
          () => false,
        ),
      "the watcher replayed the talk's creation",
    ).toBe(true);

    // The load: each sender sends one message after another. A send that fails is retried
    // with the SAME client_message_id (every 100 ms, within 40 s); every 4th acknowledged send
    // is sent once more as if its reply had been lost, and must return the same message.
    let stopping = false;
    let aborted = false;
    const attempted = new Set<string>();
    const acked = new Map<string, { id: string; seq: number; text: string; ownerId: string; at: number; startedAt: number }>();
    const replays: { clientMessageId: string; first: string; again: string }[] = [];
    const failures: { clientMessageId: string; code: string; message: string; startedAt: number; at: number; ms: number }[] = [];
    const abandoned: string[] = [];
    const sendOne = async (sender: number, clientMessageId: string, text: string) => {
      attempted.add(clientMessageId);
      const c = clients[sender] as Clients;
      const deadline = Date.now() + 40_000;
      let first: string | undefined;
      for (let attempt = 1; attempt <= 400 && Date.now() < deadline && !aborted && !process_.exited; attempt++) {
        const startedAt = Date.now();
        try {
          const response = await c.messages.sendMessage({ chatId, text, clientMessageId }, { timeoutMs: 15_000 });
          const id = response.message?.id ?? "";
          if (first === undefined) {
            // What was sent, by whom: the stored row must be this caller's own message.
            const ownerId = (agents[sender] as AgentIdentity).id;
            acked.set(clientMessageId, { id, seq: Number(response.message?.seq ?? 0n), text, ownerId, at: Date.now(), startedAt });
            if (acked.size % replayEvery !== 0) return;
            first = id;
            continue; // the reply "was lost": send again
          }
          replays.push({ clientMessageId, first, again: id });
          return;
        } catch (reason) {
          const error = ConnectError.from(reason);
          const at = Date.now();
          failures.push({
            clientMessageId,
            code: Code[error.code] ?? String(error.code),
            message: error.rawMessage,
            startedAt,
            at,
            ms: at - startedAt,
          });
          await sleep(100);
        }
      }
      if (first === undefined) abandoned.push(clientMessageId);
    };
    const load = Array.from({ length: senders }, async (_, sender) => {
      for (let j = 0; j < 5000 && !stopping && !aborted && !process_.exited; j++) {
        await sendOne(sender, `fp-${sender}-${j}`, `sender ${sender} message ${j}`);
        await sleep(20);
      }
    });

    // The fault: once the load is under way, Postgres crashes (immediate stop), stays down 5 s, starts again.
    const t0 = Date.now();
    const readyDuring: (number | string)[] = [];
    const fault = (async () => {
      try {
        await reachCount("sends acknowledged before the outage", () => acked.size, ackedBeforeOutage, 20_000);
        const ackedBefore = acked.size;
        const stopIssuedAt = Date.now();
        await server.crash();
        const stoppedAt = Date.now();
        await sleep(Math.max(0, stopIssuedAt + outageMs / 2 - Date.now()));
        const probe = readyz(process_.url);
        await sleep(Math.max(0, stopIssuedAt + outageMs - Date.now()));
        readyDuring.push(await probe);
        const startIssuedAt = Date.now();
        await server.start();
        const upAt = Date.now();
        // Every sender succeeds again (a call started after Postgres is up), within the bound.
        const recovered = await vi
          .waitFor(
            async () => {
              if (
                !Array.from({ length: senders }, (_, s) => s).every((s) =>
                  [...acked].some(([key, v]) => key.startsWith(`fp-${s}-`) && v.startedAt >= upAt),
                )
              )
                throw new Error("not yet");
            },
            { timeout: recoveryBoundMs, interval: 50 },
          )
          .then(
            () => true,
            () => false,
          );
        const recoveredAt = Date.now();
        const ackedAtRecovery = acked.size;
        await reachCount("sends acknowledged after every sender recovered", () => acked.size - ackedAtRecovery, ackedAfterRecovery, 20_000);
        return { ackedBefore, stopIssuedAt, stoppedAt, startIssuedAt, upAt, recovered, recoveredAt };
      } catch (error) {
        aborted = true;
        throw error;
      } finally {
        stopping = true;
      }
    })();
    const outage = await fault;
    await Promise.all(load);
    const loadStoppedAt = Date.now();
    const { ackedBefore: _count, recovered: _recovered, ...moments } = outage;
    const timeline = Object.fromEntries(Object.entries(moments).map(([k, v]) => [k, v - t0]));
    console.log(
      `fault-postgres timeline (ms from the load's start): ${JSON.stringify({ ...timeline, loadStoppedAt: loadStoppedAt - t0, readyDuring })}`,
    );

    // Talkhub survived the outage (a crash shows its last stderr here).
    expect(process_.exited, `Talkhub exited during the outage; its stderr:\n${process_.stderr().slice(-2000)}`).toBe(false);

    // /readyz: 503 while down, 200 again after (no restart of Talkhub).
    expect(readyDuring, "/readyz while Postgres was down").toEqual([503]);
    expect(
      await vi
        .waitFor(
          async () => {
            if (!((await readyz(process_.url)) === 200)) throw new Error("not yet");
          },
          { timeout: 10_000, interval: 50 },
        )
        .then(
          () => true,
          () => false,
        ),
      "/readyz after the restart",
    ).toBe(true);

    // Failures: all UNAVAILABLE, all fast, and the outage did hit the load.
    const codes = [...new Set(failures.map((f) => f.code))];
    const sample = failures
      .filter((f) => f.code !== "Unavailable")
      .slice(0, 5)
      .map((f) => `${f.clientMessageId}: ${f.code} ${f.message}`);
    expect(codes, `codes of failed sends (${sample.join("; ")})`).toEqual(failures.length === 0 ? [] : ["Unavailable"]);
    const maxFailureMs = Math.max(0, ...failures.map((f) => f.ms));
    const slowest = failures.reduce(
      (a, f) => (f.ms > a.ms ? f : a),
      failures[0] ?? { ms: 0, clientMessageId: "", code: "", message: "", startedAt: 0, at: 0 },
    );
    expect(maxFailureMs, `slowest failing send: ${JSON.stringify(slowest)}`).toBeLessThanOrEqual(failFastMs);
    const duringOutage = failures.filter((f) => f.at >= outage.stopIssuedAt && f.startedAt <= outage.upAt);
    expect(duringOutage.length, "sends that failed while Postgres was down").toBeGreaterThan(senders);
    expect(outage.ackedBefore, "sends acknowledged before the outage").toBeGreaterThan(5);
    const ackedWhileDown = [...acked.values()].filter((a) => a.startedAt > outage.stoppedAt + 500 && a.at < outage.startIssuedAt);
    expect(ackedWhileDown, "sends acknowledged while Postgres was surely down").toEqual([]);

    // Recovery by itself, within the bound.
    expect(outage.recovered, `every sender succeeded within ${recoveryBoundMs} ms of Postgres being up`).toBe(true);
    const firstAfter = Math.min(...[...acked.values()].filter((a) => a.startedAt >= outage.upAt).map((a) => a.at));
    const recoveryMs = firstAfter - outage.upAt;
    const allSendersMs = outage.recoveredAt - outage.upAt;
    const ackedAfter = [...acked.values()].filter((a) => a.startedAt >= outage.upAt).length;
    expect(ackedAfter, "sends acknowledged after the restart").toBeGreaterThan(5);
    expect(abandoned, "sends given up after 40 s of retries").toEqual([]);

    // Every acknowledged send is stored exactly once, as acknowledged; nothing else is.
    for (const replay of replays) expect(replay.again, `${replay.clientMessageId} sent again`).toBe(replay.first);
    expect(replays.length, "acknowledged sends sent again").toBeGreaterThan(3);
    const rows = await database.query<{ id: string; seq: string; client_message_id: string; text: string; owner_id: string }>(
      "SELECT id, seq, client_message_id, text, owner_id FROM messages WHERE chat_id = $1 AND client_message_id IS NOT NULL",
      [chatId],
    );
    const counts = await database.query<{ client_message_id: string; n: string }>(
      "SELECT client_message_id, count(*) AS n FROM messages WHERE chat_id = $1 AND client_message_id IS NOT NULL GROUP BY client_message_id HAVING count(*) <> 1",
      [chatId],
    );
    expect(counts, "client_message_ids stored more than once").toEqual([]);
    const byClientId = new Map(
      rows.map((row) => [row.client_message_id, { id: row.id, seq: Number(row.seq), text: row.text, ownerId: row.owner_id }]),
    );
    for (const [clientMessageId, sent] of acked) {
      expect(byClientId.get(clientMessageId), `acknowledged send ${clientMessageId}`).toEqual({
        id: sent.id,
        seq: sent.seq,
        text: sent.text,
        ownerId: sent.ownerId,
      });
    }
    expect(acked.size, "every attempted send was acknowledged in the end").toBe(attempted.size);
    expect(new Set(rows.map((row) => row.client_message_id)).size, "distinct client ids stored = successful sends").toBe(acked.size);
    expect(rows.length, "messages stored = successful sends").toBe(acked.size);

    // The log is 1..N, and holds one message_created per successful send.
    const head = Number((await database.query<{ last_seq: string }>("SELECT last_seq FROM talks WHERE id = $1", [chatId]))[0]?.last_seq);
    const log = await eventLog(database, chatId);
    const n = expectContiguousLog(log);
    expect(n).toBe(head);
    expect(log.filter((e) => e.seq > createdSeq && e.type === "message_created").length, "message_created events").toBe(acked.size);
    expect(n - createdSeq, "events after the talk's creation").toBe(acked.size);

    // The watcher, resuming with after_seq after stream errors: every event 1..N, in order, once.
    const caughtUp = await vi
      .waitFor(
        async () => {
          if (!((watching.events.at(-1)?.seq ?? 0) >= n)) throw new Error("not yet");
        },
        { timeout: 10_000, interval: 50 },
      )
      .then(
        () => true,
        () => false,
      );
    const caughtUpMs = Date.now() - loadStoppedAt;
    const seqs = watching.events.map((e) => e.seq);
    expect(
      caughtUp,
      `the watcher reached seq ${n}: ${describeSeqs(seqs, 1, n)}; errors ${JSON.stringify(watching.errors.slice(0, 5))}`,
    ).toBe(true);
    expect(seqs, describeSeqs(seqs, 1, n)).toEqual(range(1, n));
    expect(watching.events, "event types as in the log").toEqual(log);
    const streamCodes = [...new Set(watching.errors.map((e) => e.code))];
    expect(
      streamCodes.filter((code) => code !== "Unavailable"),
      `the watcher's stream errors: ${JSON.stringify(watching.errors.slice(0, 5))}`,
    ).toEqual([]);

    const figures = {
      sends: acked.size,
      replays: replays.length,
      failedAttempts: failures.length,
      failedDuringOutage: duringOutage.length,
      maxFailureLatencyMs: maxFailureMs,
      medianFailureLatencyMs: [...failures.map((f) => f.ms)].sort((x, y) => x - y)[Math.floor(failures.length / 2)] ?? 0,
      stopMs: outage.stoppedAt - outage.stopIssuedAt,
      startMs: outage.upAt - outage.startIssuedAt,
      recoveryMs,
      allSendersRecoveredMs: allSendersMs,
      watcherOpenings: watching.openings,
      watcherErrors: streamCodes,
      watcherCaughtUpMs: caughtUpMs,
      events: n,
      elapsedMs: loadStoppedAt - t0,
    };
    console.log(`fault-postgres figures: ${JSON.stringify(figures)}`);
  }, 150_000);
});
