/**
 * `npm run soak [-- --minutes N] [--processes 1|2] [--rate R]` (not part of CI)
 *
 * A mixed-load soak: Talkhub child processes on a fresh Postgres database (soak_<hex>) and the
 * shared NATS (a random subject prefix), abuse limits off. For N minutes (10 by default) a
 * bounded mix at a steady rate (R operations/s, 60 by default): sends with client ids, replies,
 * reactions, edits, deletes, listing, agents joining and leaving group talks, WatchTalk watchers
 * disconnecting and resuming with after_seq on another process, and a WatchEvents feed resuming
 * with its cursor. Every 10 s (more often in short soaks) the processes' RSS and V8 heap are
 * sampled right after a forced full GC (bench/gc-hook.ts). At the end: every acknowledged send
 * exists exactly once, every watcher's last seq equals its talk's log, without gap or duplicate;
 * memory does not grow (least-squares slope of RSS and heap after GC, past the first quarter of
 * the run, within --max-rss-growth and --max-heap-growth MB/min); and the load kept its rate
 * (completed operations >= 95% of --rate). Results go to bench/results/soak-<date>.json and .md;
 * the exit code is 1 when any of these is missed.
 */
import type { ChildProcess } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { Code, ConnectError } from "@connectrpc/connect";
import { mintToken } from "../src/auth/tokens.js";
import { exited, gcHookArgs, gcIn, grpcClients as clientsFor, spawnTalkhub, stopChild, type Clients } from "./server.js";

const repoRoot = fileURLToPath(new URL("..", import.meta.url));
const adminUrl = process.env["SOAK_DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test";
const natsUrl = process.env["SOAK_NATS_URL"] ?? "nats://127.0.0.1:4222";

// ------------------------------------------------------------------------------------------
// Options
// ------------------------------------------------------------------------------------------

function option(name: string, fallback: number, min: number, max: number): number {
  const args = process.argv.slice(2);
  let raw: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? "";
    if (arg === `--${name}`) raw = args[i + 1];
    else if (arg.startsWith(`--${name}=`)) raw = arg.slice(name.length + 3);
  }
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min || value > max) throw new Error(`--${name}: expected ${min}..${max}, got ${raw}`);
  return value;
}

const minutes = option("minutes", 10, 0.1, 24 * 60);
const processCount = option("processes", 2, 1, 2);
const rate = option("rate", 60, 1, 500);
// At least a dozen memory samples, however short the soak.
const sampleEveryMs = Math.min(10_000, (minutes * 60_000) / 12);
const maxRssGrowth = option("max-rss-growth", 2, 0, 1_000);
const maxHeapGrowth = option("max-heap-growth", 1, 0, 1_000);
/** The load keeps its rate when it completes at least this share of it. */
const rateTolerance = 0.95;
const maxInFlight = 32;
const talkCount = 3;

// ------------------------------------------------------------------------------------------
// Child processes (tracked by PID, SIGKILLed on exit if still running)
// ------------------------------------------------------------------------------------------

interface Server {
  readonly name: string;
  readonly url: string;
  /** The operator listener, where /metrics is. */
  readonly operatorUrl: string;
  readonly pid: number;
  readonly child: ChildProcess;
  stderr(): string;
}

async function startServer(name: string, env: Record<string, string>): Promise<Server> {
  const { child, port, operatorPort, stderr } = await spawnTalkhub(name, env, gcHookArgs);
  return { name, url: `http://127.0.0.1:${port}`, operatorUrl: `http://127.0.0.1:${operatorPort}`, pid: child.pid ?? -1, child, stderr };
}

// ------------------------------------------------------------------------------------------
// Clients, and counting every request by method and outcome
// ------------------------------------------------------------------------------------------

const requests = new Map<string, number>();
const errorsByCode = new Map<string, number>();
const errorSamples: string[] = [];
const bump = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1);

async function call<T>(method: string, run: () => Promise<T>): Promise<T> {
  try {
    const result = await run();
    bump(requests, `${method} ok`);
    return result;
  } catch (reason) {
    const error = ConnectError.from(reason);
    const code = Code[error.code] ?? String(error.code);
    bump(requests, `${method} ${code}`);
    bump(errorsByCode, code);
    if (errorSamples.length < 20) errorSamples.push(`${method}: ${code} ${error.rawMessage}`);
    throw error;
  }
}

const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)] as T;

// ------------------------------------------------------------------------------------------
// Watchers: bounded memory (last seq and counters only)
// ------------------------------------------------------------------------------------------

/**
 * A stream that the soak keeps open, resuming it (on the next process, when churned) after
 * every end; subclasses read one opening and keep their own resume position.
 */
abstract class ResumingStream {
  received = 0;
  gaps = 0;
  duplicates = 0;
  resumes = 0;
  streamErrors = 0;
  #controller: AbortController | undefined;
  #stopped = false;
  #done: Promise<void> = Promise.resolve();
  #process: number;

  constructor(
    readonly name: string,
    private readonly clients: readonly Clients[],
    startOn: number,
  ) {
    this.#process = startOn;
  }

  /** The method name, for the request and error counts. */
  protected abstract readonly method: string;

  /** Reads one opening of the stream until it ends or `signal` aborts. */
  protected abstract consume(clients: Clients, signal: AbortSignal): Promise<void>;

  start(): void {
    this.#done = this.#run();
  }

  async #run(): Promise<void> {
    // Bounded: at most 100,000 stream openings over the soak.
    for (let opening = 0; opening < 100_000 && !this.#stopped; opening++) {
      const controller = new AbortController();
      this.#controller = controller;
      const clients = this.clients[this.#process % this.clients.length] as Clients;
      try {
        bump(requests, `${this.method} opened`);
        await this.consume(clients, controller.signal);
      } catch (reason) {
        if (!controller.signal.aborted) {
          this.streamErrors++;
          const code = Code[ConnectError.from(reason).code] ?? "?";
          bump(errorsByCode, `${this.method} stream ${code}`);
          if (errorSamples.length < 20) errorSamples.push(`${this.name}: ${code} ${ConnectError.from(reason).rawMessage}`);
          await sleep(200);
        }
      }
      if (this.#stopped) return;
      this.resumes++;
    }
  }

  /** Disconnects and resumes on the other process. */
  churn(): void {
    this.#process++;
    this.#controller?.abort();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#controller?.abort();
    await Promise.race([this.#done, sleep(5000)]);
  }
}

/** A WatchTalk that resumes with after_seq. */
class TalkWatcher extends ResumingStream {
  lastSeq = 0;
  protected readonly method = "WatchTalk";

  constructor(
    name: string,
    readonly chatId: string,
    clients: readonly Clients[],
    startOn: number,
  ) {
    super(name, clients, startOn);
  }

  protected async consume(clients: Clients, signal: AbortSignal): Promise<void> {
    for await (const response of clients.talks.watchTalk({ chatId: this.chatId, afterSeq: BigInt(this.lastSeq) }, { signal })) {
      if (response.kind.case !== "event") continue;
      const seq = Number(response.kind.value.seq);
      this.received++;
      if (seq <= this.lastSeq) this.duplicates++;
      else {
        if (seq !== this.lastSeq + 1) this.gaps++;
        this.lastSeq = seq;
      }
    }
  }
}

/** The WatchEvents feed, resuming with its cursor. */
class EventsFeed extends ResumingStream {
  cursor = "";
  readonly lastSeq = new Map<string, number>();
  protected readonly method = "WatchEvents";
  #started: () => void = () => undefined;
  readonly started = new Promise<void>((resolve) => (this.#started = resolve));

  constructor(clients: readonly Clients[]) {
    super("WatchEvents feed", clients, 0);
  }

  protected async consume(clients: Clients, signal: AbortSignal): Promise<void> {
    for await (const response of clients.talks.watchEvents({ cursor: this.cursor }, { signal })) {
      if (response.kind.case === "event") {
        const { seq: raw, chatId } = response.kind.value;
        const seq = Number(raw);
        this.received++;
        const last = this.lastSeq.get(chatId);
        if (last !== undefined && seq <= last) this.duplicates++;
        else {
          if (last !== undefined && seq !== last + 1) this.gaps++;
          this.lastSeq.set(chatId, seq);
        }
      }
      if (response.cursor !== "") this.cursor = response.cursor;
      this.#started();
    }
  }
}

// ------------------------------------------------------------------------------------------
// Memory samples
// ------------------------------------------------------------------------------------------

interface Sample {
  readonly atMin: number;
  readonly rssMb: number;
  readonly heapMb: number;
}

/** RSS and V8 heap right after a forced full GC in the server (NaN when it does not answer). */
async function sampleOf(server: Server, startedAt: number): Promise<Sample> {
  const memory = exited(server.child) ? { rss: NaN, heapUsed: NaN } : await gcIn(server.child).catch(() => ({ rss: NaN, heapUsed: NaN }));
  return { atMin: (Date.now() - startedAt) / 60_000, rssMb: round(memory.rss / 2 ** 20), heapMb: round(memory.heapUsed / 2 ** 20) };
}

const round = (value: number, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;

/** Least-squares slope of y over x (per minute), NaN with fewer than 2 points. */
function slope(points: readonly { x: number; y: number }[]): number {
  const valid = points.filter((p) => Number.isFinite(p.y));
  if (valid.length < 2) return NaN;
  const mx = valid.reduce((s, p) => s + p.x, 0) / valid.length;
  const my = valid.reduce((s, p) => s + p.y, 0) / valid.length;
  const num = valid.reduce((s, p) => s + (p.x - mx) * (p.y - my), 0);
  const den = valid.reduce((s, p) => s + (p.x - mx) ** 2, 0);
  return den === 0 ? NaN : num / den;
}

// ------------------------------------------------------------------------------------------
// The soak
// ------------------------------------------------------------------------------------------

interface Known {
  readonly id: string;
  readonly author: number;
  deleted: boolean;
}

async function main(): Promise<number> {
  const startedIso = new Date().toISOString();
  const dbName = `soak_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const dbUrl = new URL(adminUrl);
  dbUrl.pathname = `/${dbName}`;
  const db = new pg.Pool({ connectionString: dbUrl.toString(), max: 2 });
  db.on("error", () => undefined);

  const servers: Server[] = [];
  const opened: Clients[] = [];
  const watchers: TalkWatcher[] = [];
  let feed: EventsFeed | undefined;
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);

  try {
    const secret = randomBytes(32).toString("hex");
    const env = {
      TALKHUB_HOST: "127.0.0.1",
      TALKHUB_PORT: "0",
      TALKHUB_OPERATOR_PORT: "0",
      DATABASE_URL: dbUrl.toString(),
      NATS_URL: natsUrl,
      TALKHUB_NATS_PREFIX: `soak${randomBytes(6).toString("hex")}`,
      TALKHUB_JWT_SECRET: secret,
      TALKHUB_LOG_LEVEL: "warn",
      TALKHUB_SEND_RATE: "0",
      TALKHUB_TALK_CREATE_RATE: "0",
      TALKHUB_PARTICIPANT_RATE: "0",
      TALKHUB_REACTION_RATE: "0",
      TALKHUB_EDIT_RATE: "0",
      TALKHUB_DELETE_RATE: "0",
      TALKHUB_TALK_STATUS_RATE: "0",
      TALKHUB_STREAMS_PER_AGENT: "0",
    };
    for (let i = 0; i < processCount; i++) servers.push(await startServer(`P${i}`, env));
    console.log(
      `soak: ${minutes} min at ${rate} ops/s on ${servers.map((s) => `${s.name} pid ${s.pid} ${s.url}`).join(", ")}; database ${dbName}`,
    );

    // Agents 0..3 stay in every talk; 4 and 5 join and leave.
    const customer = randomUUID();
    const agents = await Promise.all(
      Array.from({ length: 6 }, async (_, i) => {
        const id = randomUUID();
        return { id, token: await mintToken(secret, { customerId: customer, agentId: id, name: `soak agent ${i}` }) };
      }),
    );
    // clients[agent][process]
    const clients = agents.map((agent) =>
      servers.map((server) => {
        const c = clientsFor(server.url, agent.token);
        opened.push(c);
        return c;
      }),
    );
    const on = (agent: number): Clients => pick(clients[agent] as Clients[]);
    for (const list of clients) await Promise.all(list.map((c) => c.talks.listTalks({})));

    const talks: string[] = [];
    for (let t = 0; t < talkCount; t++) {
      const created = await call("CreateTalk", () =>
        clients[0]![0]!.talks.createTalk({ type: "group", name: `soak ${t}`, participantIds: [1, 2, 3].map((i) => agents[i]?.id ?? "") }),
      );
      talks.push(created.talk?.id ?? "");
    }

    // Two WatchTalk watchers per talk, on different processes; one WatchEvents feed (agent 1).
    for (const [t, chatId] of talks.entries()) {
      for (const [k, agent] of [1, 2].entries()) {
        const w = new TalkWatcher(`talk ${t} agent ${agent + k}`, chatId, clients[agent + k] as Clients[], k);
        watchers.push(w);
        w.start();
      }
    }
    feed = new EventsFeed(clients[1] as Clients[]);
    feed.start();
    await Promise.race([feed.started, sleep(10_000)]);

    // State of the mix.
    const attempted = new Set<string>();
    const acked = new Map<string, { id: string; seq: number; chatId: string }>();
    const unsettled: string[] = [];
    const known = new Map<string, Known[]>(talks.map((t) => [t, []]));
    /** membership[agent 4|5][talk] = participant id when a member; busy while a change runs. */
    const membership = new Map<string, string>();
    const busy = new Set<string>();
    let sendCounter = 0;
    let ops = 0;
    let completedOps = 0;
    let skipped = 0;
    let inFlight = 0;

    const remember = (chatId: string, entry: Known) => {
      const list = known.get(chatId) ?? [];
      list.push(entry);
      if (list.length > 300) list.shift();
      known.set(chatId, list);
    };
    const liveMessage = (chatId: string, author?: number) =>
      (known.get(chatId) ?? []).filter((m) => !m.deleted && (author === undefined || m.author === author));

    const send = async (reply: boolean) => {
      const chatId = pick(talks);
      const author = Math.floor(Math.random() * 4);
      const parent = reply ? pick(known.get(chatId) ?? [])?.id : undefined;
      const clientMessageId = `soak-${sendCounter++}`;
      attempted.add(clientMessageId);
      for (let attempt = 1; attempt <= 5; attempt++) {
        try {
          const response = await call(reply ? "SendMessage(reply)" : "SendMessage", () =>
            on(author).messages.sendMessage(
              { chatId, text: `soak message ${clientMessageId}`, clientMessageId, parentId: parent ?? "" },
              { timeoutMs: 10_000 },
            ),
          );
          const message = response.message;
          acked.set(clientMessageId, { id: message?.id ?? "", seq: Number(message?.seq ?? 0n), chatId });
          remember(chatId, { id: message?.id ?? "", author, deleted: false });
          return;
        } catch (error) {
          const code = ConnectError.from(error).code;
          if (code !== Code.Unavailable && code !== Code.DeadlineExceeded && code !== Code.Unknown && code !== Code.Canceled) break;
          await sleep(200);
        }
      }
      unsettled.push(clientMessageId);
    };

    const react = async () => {
      const chatId = pick(talks);
      const target = pick(liveMessage(chatId));
      if (target === undefined) return;
      const agent = Math.floor(Math.random() * 4);
      const emoji = pick(["thumbsup", "heart", "smile"]);
      if (Math.random() < 0.7) await call("AddReaction", () => on(agent).messages.addReaction({ messageId: target.id, emoji }));
      else await call("RemoveReaction", () => on(agent).messages.removeReaction({ messageId: target.id, emoji }));
    };

    const edit = async () => {
      const author = Math.floor(Math.random() * 4);
      const target = pick(liveMessage(pick(talks), author));
      if (target === undefined) return;
      await call("UpdateMessage", () => on(author).messages.updateMessage({ id: target.id, text: `edited ${Date.now()}` }));
    };

    const remove = async () => {
      const author = Math.floor(Math.random() * 4);
      const target = pick(liveMessage(pick(talks), author));
      if (target === undefined) return;
      target.deleted = true;
      await call("DeleteMessage", () => on(author).messages.deleteMessage({ id: target.id }));
    };

    const list = async () => {
      await call("ListMessages", () => on(Math.floor(Math.random() * 4)).messages.listMessages({ chatId: pick(talks), pageSize: 20 }));
    };

    const joinOrLeave = async () => {
      const agent = 4 + Math.floor(Math.random() * 2);
      const chatId = pick(talks);
      const key = `${agent} ${chatId}`;
      if (busy.has(key)) return;
      busy.add(key);
      try {
        const participantId = membership.get(key);
        if (participantId === undefined) {
          const added = await call("AddParticipant", () =>
            on(Math.floor(Math.random() * 4)).talks.addParticipant({ chatId, agentId: agents[agent]?.id ?? "" }),
          );
          membership.set(key, added.participant?.id ?? "");
        } else {
          await call("RemoveParticipant", () => on(agent).talks.removeParticipant({ chatId, participantId }));
          membership.delete(key);
        }
      } finally {
        busy.delete(key);
      }
    };

    const churn = () => {
      if (Math.random() < 0.1 && feed !== undefined) {
        feed.churn();
        bump(requests, "WatchEvents resumed (churn)");
      } else {
        pick(watchers).churn();
        bump(requests, "WatchTalk resumed (churn)");
      }
    };

    const mix: [number, () => Promise<void> | void][] = [
      [35, () => send(false)],
      [10, () => send(true)],
      [15, react],
      [10, edit],
      [5, remove],
      [15, list],
      [6, joinOrLeave],
      [4, churn],
    ];
    const weightSum = mix.reduce((s, [w]) => s + w, 0);
    const nextOp = () => {
      let r = Math.random() * weightSum;
      for (const [w, op] of mix) {
        if ((r -= w) < 0) return op;
      }
      return mix[0]?.[1] as () => Promise<void>;
    };

    // Memory samples every 10 s.
    const startedAt = Date.now();
    const samples = new Map<string, Sample[]>(servers.map((s) => [s.name, []]));
    const takeSamples = async () => {
      const line: string[] = [];
      for (const server of servers) {
        const sample = await sampleOf(server, startedAt);
        samples.get(server.name)?.push(sample);
        line.push(`${server.name} rss ${sample.rssMb} MB heap ${sample.heapMb} MB`);
      }
      const done = [...requests.entries()].filter(([k]) => !k.includes("opened") && !k.includes("churn")).reduce((s, [, n]) => s + n, 0);
      console.log(
        `[${round((Date.now() - startedAt) / 60_000, 2)} min] ${line.join("; ")}; requests ${done}, errors ${[...errorsByCode.values()].reduce((s, n) => s + n, 0)}, in flight ${inFlight}`,
      );
    };
    await takeSamples();
    const sampler = setInterval(() => void takeSamples(), sampleEveryMs);

    // The load: every 100 ms, rate/10 operations (fractions carried), at most maxInFlight at once.
    const endAt = startedAt + minutes * 60_000;
    let credit = 0;
    const tickMs = 100;
    const pending = new Set<Promise<void>>();
    for (let tick = 0; Date.now() < endAt && !interrupted && tick < 10_000_000; tick++) {
      credit += (rate * tickMs) / 1000;
      for (; credit >= 1; credit--) {
        if (inFlight >= maxInFlight) {
          skipped++;
          continue;
        }
        ops++;
        inFlight++;
        const run = (async () => {
          try {
            await nextOp()();
            completedOps++;
          } catch {
            // counted by call()
          } finally {
            inFlight--;
          }
        })();
        pending.add(run);
        void run.then(() => pending.delete(run));
      }
      await sleep(Math.max(0, startedAt + (tick + 1) * tickMs - Date.now()));
    }
    const loadEndedAt = Date.now();
    await Promise.race([Promise.all(pending), sleep(30_000)]);
    clearInterval(sampler);
    await takeSamples();
    const elapsedMin = (loadEndedAt - startedAt) / 60_000;

    // Checks: the log is the truth.
    const heads = new Map<string, number>();
    for (const chatId of talks) {
      const row = await db.query<{ last_seq: string }>("SELECT last_seq FROM talks WHERE id = $1", [chatId]);
      heads.set(chatId, Number(row.rows[0]?.last_seq));
    }
    const caughtUp = () =>
      watchers.every((w) => w.lastSeq >= (heads.get(w.chatId) ?? 0)) &&
      talks.every((t) => (feed?.lastSeq.get(t) ?? 0) >= (heads.get(t) ?? 0));
    for (let i = 0; i < 300 && !caughtUp(); i++) await sleep(50);

    const problems: string[] = [];
    for (const chatId of talks) {
      const log = await db.query<{ seq: string }>("SELECT seq FROM events WHERE chat_id = $1 ORDER BY seq", [chatId]);
      const seqs = log.rows.map((r) => Number(r.seq));
      const contiguous = seqs.every((s, i) => s === i + 1);
      if (!contiguous || seqs.length !== heads.get(chatId))
        problems.push(`talk ${chatId}: log not 1..${heads.get(chatId)} (${seqs.length} rows)`);
    }
    const rows = await db.query<{ client_message_id: string; n: string; ids: string[] }>(
      "SELECT client_message_id, count(*) AS n, array_agg(id::text) AS ids FROM messages WHERE client_message_id IS NOT NULL GROUP BY client_message_id",
    );
    const stored = new Map(rows.rows.map((r) => [r.client_message_id, { n: Number(r.n), ids: r.ids }]));
    let lost = 0;
    let duplicated = 0;
    for (const [clientMessageId, ack] of acked) {
      const row = stored.get(clientMessageId);
      if (row === undefined || row.ids[0] !== ack.id) {
        lost++;
        if (problems.length < 30) problems.push(`acknowledged ${clientMessageId} (${ack.id}) stored as ${JSON.stringify(row)}`);
      }
    }
    for (const [clientMessageId, row] of stored) {
      if (row.n !== 1) {
        duplicated++;
        if (problems.length < 30) problems.push(`${clientMessageId} stored ${row.n} times`);
      }
      if (!attempted.has(clientMessageId)) problems.push(`${clientMessageId} stored but never sent`);
    }
    const unexplained = stored.size - acked.size - unsettled.filter((id) => stored.has(id)).length;
    if (unexplained !== 0) problems.push(`${unexplained} stored client ids are neither acknowledged nor unsettled`);
    for (const w of watchers) {
      const head = heads.get(w.chatId) ?? 0;
      if (w.lastSeq !== head || w.gaps !== 0 || w.duplicates !== 0) {
        problems.push(`${w.name}: last seq ${w.lastSeq} of ${head}, gaps ${w.gaps}, duplicates ${w.duplicates}`);
      }
    }
    for (const t of talks) {
      const head = heads.get(t) ?? 0;
      if ((feed.lastSeq.get(t) ?? 0) !== head) problems.push(`WatchEvents: talk ${t} last seq ${feed.lastSeq.get(t)} of ${head}`);
    }
    if (feed.gaps !== 0 || feed.duplicates !== 0) problems.push(`WatchEvents: gaps ${feed.gaps}, duplicates ${feed.duplicates}`);
    for (const server of servers) if (exited(server.child)) problems.push(`${server.name} exited: ${server.stderr().slice(-500)}`);

    // Summary.
    const memory = servers.map((server) => {
      const list = samples.get(server.name) ?? [];
      // The first quarter is warm-up (code loaded, pools and caches filling).
      const judged = list.filter((s) => s.atMin >= elapsedMin / 4 && Number.isFinite(s.rssMb) && Number.isFinite(s.heapMb));
      const finite = (values: number[]) => values.filter(Number.isFinite);
      return {
        process: server.name,
        pid: server.pid,
        rssMb: { first: list[0]?.rssMb, last: list.at(-1)?.rssMb, max: Math.max(...finite(list.map((s) => s.rssMb))) },
        heapMb: { first: list[0]?.heapMb, last: list.at(-1)?.heapMb, max: Math.max(...finite(list.map((s) => s.heapMb))) },
        judgedSamples: judged.length,
        slopeMbPerMin: {
          rss: round(slope(judged.map((s) => ({ x: s.atMin, y: s.rssMb }))), 2),
          heap: round(slope(judged.map((s) => ({ x: s.atMin, y: s.heapMb }))), 2),
        },
        samples: list,
      };
    });
    // Memory growth: bounded slopes, judged on enough samples.
    const memoryProblems: string[] = [];
    for (const m of memory) {
      if (m.judgedSamples < 4)
        memoryProblems.push(`${m.process}: only ${m.judgedSamples} memory samples after the warm-up, growth not judged`);
      if (!(m.slopeMbPerMin.rss <= maxRssGrowth))
        memoryProblems.push(`${m.process}: RSS after GC grows ${m.slopeMbPerMin.rss} MB/min (bound ${maxRssGrowth})`);
      if (!(m.slopeMbPerMin.heap <= maxHeapGrowth))
        memoryProblems.push(`${m.process}: heap after GC grows ${m.slopeMbPerMin.heap} MB/min (bound ${maxHeapGrowth})`);
    }
    // Throughput: the operations completed against the rate asked for.
    const achievedRate = completedOps / ((loadEndedAt - startedAt) / 1000);
    const throughputProblems =
      achievedRate >= rateTolerance * rate
        ? []
        : [
            `completed ${round(achievedRate, 1)} ops/s, ${round((100 * achievedRate) / rate, 0)}% of the ${rate} ops/s target (needs ${rateTolerance * 100}%)`,
          ];
    const requestTotal = [...requests.entries()]
      .filter(([k]) => !k.includes("opened") && !k.includes("churn"))
      .reduce((s, [, n]) => s + n, 0);
    const result = {
      startedAt: startedIso,
      minutes: round(elapsedMin, 2),
      processes: processCount,
      targetOpsPerSecond: rate,
      machine: { cpus: cpus().length, loadavg: loadavg().map((l) => round(l, 2)) },
      operations: ops,
      completedOperations: completedOps,
      achievedOpsPerSecond: round(achievedRate, 1),
      skippedAtInFlightCap: skipped,
      requests: requestTotal,
      requestsPerSecond: round(requestTotal / (elapsedMin * 60), 1),
      requestsByMethodAndCode: Object.fromEntries([...requests.entries()].sort()),
      errorsByCode: Object.fromEntries(errorsByCode),
      errorSamples,
      sends: { attempted: attempted.size, acknowledged: acked.size, unsettled: unsettled.length, stored: stored.size, lost, duplicated },
      talks: talks.map((t) => ({ id: t, lastSeq: heads.get(t) })),
      watchers: watchers.map((w) => ({
        name: w.name,
        lastSeq: w.lastSeq,
        head: heads.get(w.chatId),
        received: w.received,
        gaps: w.gaps,
        duplicates: w.duplicates,
        resumes: w.resumes,
        streamErrors: w.streamErrors,
      })),
      eventsFeed: {
        received: feed.received,
        gaps: feed.gaps,
        duplicates: feed.duplicates,
        resumes: feed.resumes,
        streamErrors: feed.streamErrors,
      },
      memory,
      bounds: { maxRssGrowthMbPerMin: maxRssGrowth, maxHeapGrowthMbPerMin: maxHeapGrowth, rateTolerance },
      problems,
      memoryProblems,
      throughputProblems,
      verdict: {
        delivery: problems.length === 0,
        memory: memoryProblems.length === 0,
        throughput: throughputProblems.length === 0,
      },
      ok: problems.length === 0 && memoryProblems.length === 0 && throughputProblems.length === 0,
    };

    const date = startedIso.slice(0, 10);
    const dir = join(repoRoot, "bench", "results");
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, `soak-${date}.json`), `${JSON.stringify(result, null, 2)}\n`);
    const md = [
      `# Soak ${startedIso}`,
      "",
      `${result.minutes} min, ${processCount} process(es) on Postgres + NATS, target ${rate} ops/s (${cpus().length} cores, load ${result.machine.loadavg.join(" ")}).`,
      "",
      `- requests: ${requestTotal} (${result.requestsPerSecond}/s); operations ${ops}, completed ${completedOps} (${result.achievedOpsPerSecond}/s of ${rate}), skipped at the in-flight cap ${skipped}`,
      `- errors by code: ${errorsByCode.size === 0 ? "none" : [...errorsByCode.entries()].map(([k, v]) => `${k} ${v}`).join(", ")}`,
      `- sends: attempted ${attempted.size}, acknowledged ${acked.size}, stored ${stored.size}, lost ${lost}, duplicated ${duplicated}, unsettled ${unsettled.length}`,
      `- watchers: ${watchers.length} WatchTalk (${watchers.reduce((s, w) => s + w.resumes, 0)} resumes with after_seq), 1 WatchEvents (${feed.resumes} resumes with its cursor); ${watchers.every((w) => w.lastSeq === heads.get(w.chatId) && w.gaps === 0 && w.duplicates === 0) ? "every one ended at its talk's last seq, no gap, no duplicate" : "SEE PROBLEMS"}`,
      `- delivery (every acknowledged send stored once, every watcher at its talk's head): ${problems.length === 0 ? "met" : `MISSED: ${problems.join("; ")}`}`,
      `- memory (slope after GC past the first quarter: RSS <= ${maxRssGrowth}, heap <= ${maxHeapGrowth} MB/min): ${memoryProblems.length === 0 ? "met" : `MISSED: ${memoryProblems.join("; ")}`}`,
      `- throughput (completed >= ${rateTolerance * 100}% of ${rate} ops/s): ${throughputProblems.length === 0 ? `met (${result.achievedOpsPerSecond}/s)` : `MISSED: ${throughputProblems.join("; ")}`}`,
      `- verdict: ${result.ok ? "OK" : "FAILED"}`,
      "",
      "| process | RSS after GC first / last / max (MB) | heap after GC first / last / max (MB) | samples judged | slope past the first quarter (MB/min): RSS / heap |",
      "|---|---|---|---|---|",
      ...memory.map(
        (m) =>
          `| ${m.process} | ${m.rssMb.first} / ${m.rssMb.last} / ${m.rssMb.max} | ${m.heapMb.first} / ${m.heapMb.last} / ${m.heapMb.max} | ${m.judgedSamples} | ${m.slopeMbPerMin.rss} / ${m.slopeMbPerMin.heap} |`,
      ),
      "",
      "| method outcome | count |",
      "|---|---|",
      ...Object.entries(result.requestsByMethodAndCode).map(([k, v]) => `| ${k} | ${v} |`),
      "",
    ].join("\n");
    await writeFile(join(dir, `soak-${date}.md`), md);
    console.log(md);
    console.log(`written: bench/results/soak-${date}.json and .md`);
    return result.ok ? 0 : 1;
  } finally {
    await Promise.all(watchers.map((w) => w.stop()));
    await feed?.stop();
    for (const c of opened) c.close();
    await Promise.all(servers.map((s) => stopChild(s.child)));
    await db.end().catch(() => undefined);
    await admin
      .query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`)
      .catch((e: unknown) => console.error(`drop ${dbName}: ${String(e)}`));
    await admin.end().catch(() => undefined);
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(2);
  },
);
