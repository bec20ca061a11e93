/**
 * `npm run bench [-- --quick] [--only=send,outside,fanout,history,capacity,scale,start,round-trips] [--backends=postgres,pglite] [--no-profile]`
 *
 * Runs every workload against Talkhub (Postgres+NATS, then embedded PGlite) and its raw
 * baseline in one run, with the server under test in a child process, and writes
 * bench/results/<date>[-quick].json and .md (+ SVG charts). Everything stops by itself; the
 * Postgres databases (bench_<hex>) are dropped and the NATS subjects are prefixed per run.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { mkdir, readdir, rm } from "node:fs/promises";
import { cpus, loadavg, release, totalmem } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { connect as natsConnect } from "@nats-io/transport-node";
import { runCapacity, type CapacityPoint } from "./capacity.js";
import { CpuMeter, pidsByName, ticksPerSecond, type CpuRole, type CpuStep } from "./cpu.js";
import { runFanout, runFanoutTargets, WatcherPool, type FanoutOptions, type FanoutPoint, type FanoutTarget } from "./fanout.js";
import { runHistory, seed, talkId, type HistoryResult, type SeedPlan } from "./history.js";
import { runOutside, type OutsideResult } from "./outside.js";
import { summarizeProfile, type ProfileSummary } from "./profile.js";
import { writeReport } from "./report.js";
import { runRoundTrips, type ChangeRoundTrips } from "./round-trips.js";
import { runScale, type ScaleResult } from "./scale.js";
import { runStartTime, type StartTimeResult } from "./start-time.js";
import { rawInserter, runSend, talkhubSends, type SendPoint } from "./send.js";
import {
  createDatabase,
  natsUrl,
  newAgent,
  postgresAdminUrl,
  repoRoot,
  serverDbPool,
  startServer,
  type Backend,
  type BenchDatabase,
} from "./server.js";
import { nowAbs, round } from "./stats.js";

const workloads = ["send", "outside", "fanout", "history", "capacity", "scale", "start", "round-trips"] as const;
export type Workload = (typeof workloads)[number];
const watcherProcesses = 2;

export interface BackendResults {
  seedMs?: number;
  send?: SendPoint[];
  rawLabel?: string;
  rawBatchedLabel?: string;
  outside?: OutsideResult;
  /** Start time of node dist/main.js, cold and warm (the embedded default: pglite only). */
  start?: StartTimeResult;
  fanout?: FanoutPoint[];
  /** The fixed-rate fan-out points of their own rate and talk count (settings.fanoutTargets). */
  fanoutTargets?: FanoutPoint[];
  /** Statements per change (edit, reaction, participant, delete), counted at the driver. */
  roundTrips?: ChangeRoundTrips[];
  history?: HistoryResult;
  capacity?: CapacityPoint[];
  scale?: ScaleResult;
  profile?: ProfileSummary;
  /** CPU per operation of each measured step, from /proc/<pid>/stat (bench/cpu.ts). */
  cpu?: CpuStep[];
  /** Which processes the CPU columns sum. */
  cpuRoles?: Record<string, string>;
}

export interface Results {
  /** The report's name: the date (with -quick), suffixed -2, -3... when that one exists. */
  date: string;
  readonly quick: boolean;
  readonly startedAt: string;
  finishedAt: string;
  durationS: number;
  readonly environment: Environment;
  readonly settings: Settings;
  /** What this run was configured to measure: every point of it appears in the report. */
  readonly configured: { readonly backends: Backend[]; readonly workloads: Workload[] };
  readonly backends: Partial<Record<Backend, BackendResults>>;
  readonly errors: string[];
}

function parseArgs(argv: readonly string[]) {
  const quick = argv.includes("--quick");
  const only = argv
    .find((a) => a.startsWith("--only="))
    ?.slice(7)
    .split(",")
    .filter(Boolean) ?? [...workloads];
  for (const w of only)
    if (!(workloads as readonly string[]).includes(w)) throw new Error(`--only: unknown workload "${w}" (${workloads.join(", ")})`);
  const backends = (argv
    .find((a) => a.startsWith("--backends="))
    ?.slice(11)
    .split(",") ?? ["postgres", "pglite"]) as Backend[];
  return { quick, only: new Set(only as Workload[]), backends, profile: !argv.includes("--no-profile") };
}

const args = parseArgs(process.argv.slice(2));
const { quick, only } = args;
const log = (line: string) => console.log(`[${((nowAbs() - startedAt) / 1000).toFixed(1).padStart(6)}s] ${line}`);
const startedAt = nowAbs();

export type Settings = typeof settings;
export interface Environment {
  node: string;
  cpus: number;
  cpuModel: string | undefined;
  memoryGiB: number;
  kernel: string;
  postgres: string;
  nats: string;
  loadAvgAtStart: number[];
  loadAvgAtEnd?: number[];
  serverProcess: string;
  serverDbPool: number;
  watcherProcesses: number;
  /** Clock ticks per second of /proc/<pid>/stat CPU times (their resolution). */
  cpuTicksPerSecond: number;
}

const settings = {
  // One talk from a plain grpc-js client with 10 grpc-js watchers, vs a raw insert per row: medians of 3 interleaved runs.
  outside: { concurrency: 8, watchers: 10, messages: quick ? 300 : 2_000, runs: 3, warmup: quick ? 50 : 200 },
  send: {
    concurrencies: quick ? [1, 32, 128] : [1, 8, 32, 128],
    spreads: [1, 100],
    durationMs: quick ? 250 : 3_000,
    warmupMs: quick ? 50 : 300,
  },
  fanout: {
    // R=500 is in --quick too: every target of the full run is in every report.
    watchers: [10, 50, 500],
    durationMs: quick ? 300 : 3_000,
    fixedRate: 1_000,
    fullConcurrency: 8,
    deliveryBudget: quick ? 150_000 : 2_000_000,
    // --quick measures the targets' fixed rate only.
    modes: quick ? ["fixed"] : ["full", "fixed"],
  } satisfies FanoutOptions,
  // Fan-out targets at their own rate, in --quick too (over 1 s instead of 3): one talk with
  // 500 watchers at 200 msg/s, and 2,000 msg/s spread over 1,000 talks of 10 watchers each.
  fanoutTargets: [
    { talks: 1, watchers: 500, rate: 200, durationMs: quick ? 1_000 : 3_000 },
    { talks: 1_000, watchers: 10, rate: 2_000, durationMs: quick ? 1_000 : 3_000 },
  ] satisfies FanoutTarget[],
  // Each change counted this many times (its most statements is its figure).
  roundTrips: { runs: quick ? 3 : 10 },
  history: {
    // An agent in 10,000 talks in --quick too: the talks seed in a second, and ListTalks' cost
    // grows with them (the messages are what take long to seed).
    postgres: quick ? { messages: 20_000, talks: 10_000 } : { messages: 1_000_000, talks: 10_000 },
    // PGlite (WebAssembly, one query at a time) seeds ~5k rows/s here: smaller, see the report.
    pglite: quick ? { messages: 2_000, talks: 500 } : { messages: 100_000, talks: 10_000 },
  },
  capacity: {
    postgres: { grpc: quick ? 1_000 : 10_000, ws: quick ? 100 : 1_000 },
    pglite: { grpc: quick ? 200 : 10_000, ws: quick ? 50 : 1_000 },
  },
  scale: {
    talkCounts: quick ? [1, 100, 1_000] : [1, 10, 100, 1_000, 10_000],
    watcherCounts: quick ? [] : [25, 100, 250],
    durationMs: quick ? 250 : 2_000,
    warmupMs: quick ? 50 : 200,
  },
  profile: { concurrency: 32, talks: 100, durationMs: 8_000 },
  start: { runs: quick ? 2 : 3, timeoutMs: 120_000 },
};

/** Versions as the servers report them (they are part of what was measured). */
async function versions(): Promise<{ postgres: string; nats: string }> {
  let postgres = "unreachable";
  let nats = "unreachable";
  const client = new pg.Client({ connectionString: postgresAdminUrl });
  try {
    await client.connect();
    postgres = (await client.query<{ server_version: string }>("SHOW server_version")).rows[0]?.server_version ?? "unknown";
  } catch (error) {
    postgres = `unreachable (${String(error).slice(0, 100)})`;
  } finally {
    await client.end().catch(() => undefined);
  }
  try {
    const nc = await natsConnect({ servers: natsUrl, name: "talkhub-bench-version" });
    nats = nc.info?.version ?? "unknown";
    await nc.close();
  } catch (error) {
    nats = `unreachable (${String(error).slice(0, 100)})`;
  }
  return { postgres, nats };
}

const results: Results = {
  date: new Date().toISOString().slice(0, 10) + (quick ? "-quick" : ""),
  quick,
  startedAt: new Date().toISOString(),
  finishedAt: "",
  durationS: 0,
  environment: {
    node: process.version,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    memoryGiB: round(totalmem() / 2 ** 30, 1),
    kernel: release(),
    ...(await versions()),
    loadAvgAtStart: loadavg().map((x) => round(x, 2)),
    serverProcess: "child: node --expose-gc --import tsx --import ./bench/gc-hook.ts src/main.ts (TALKHUB_LOG_LEVEL=warn)",
    serverDbPool,
    watcherProcesses,
    cpuTicksPerSecond: ticksPerSecond,
  },
  settings,
  configured: { backends: args.backends, workloads: [...only] },
  backends: {},
  errors: [],
};

const resultsDir = join(repoRoot, "bench", "results");
await mkdir(resultsDir, { recursive: true });
const secret = randomBytes(32).toString("hex");
const pool = await WatcherPool.start(watcherProcesses);
log(`bench ${quick ? "--quick " : ""}workloads: ${[...only].join(", ")}; backends: ${args.backends.join(", ")}`);

async function runBackend(backend: Backend): Promise<void> {
  const out: BackendResults = {};
  results.backends[backend] = out;
  let database: BenchDatabase | undefined;
  try {
    if (only.has("start") && backend === "pglite") out.start = await runStartTime(settings.start, log);
    database = await createDatabase(backend);
    const agent = await newAgent(secret, randomUUID());
    const size = settings.history[backend];
    const plan: SeedPlan = {
      key: randomBytes(6).toString("hex"),
      agent,
      messages: only.has("history") ? size.messages : 10,
      talks: only.has("history") || only.has("scale") ? size.talks : 200,
    };
    log(`${backend}: seeding ${plan.messages} messages, ${plan.talks} talks`);
    out.seedMs = round(await seed(database, plan), 0);
    log(`${backend}: seeded in ${out.seedMs} ms`);
    // Talks 2..T for sends (talk 1 holds the history), then talk 1 for the 10,000-talk point.
    const talkIds = [...Array.from({ length: plan.talks - 1 }, (_, i) => talkId(plan, i + 2)), talkId(plan, 1)];

    const server = await startServer({ database, secret });
    const raw = only.has("send") || only.has("outside") ? await rawInserter(database, talkIds, agent.customerId) : undefined;
    // CPU accounting: the Postgres backends connected to the bench database (the server's pool
    // and the raw baselines' clients), listed at every sample.
    const monitor = database.url === undefined ? undefined : new pg.Client({ connectionString: database.url });
    await monitor?.connect();
    const roles: CpuRole[] = [{ name: "server", pids: async () => [server.pid] }];
    const roleHelp: Record<string, string> = {
      server: backend === "pglite" ? "the Talkhub child process (PGlite runs inside it)" : "the Talkhub child process",
    };
    if (monitor !== undefined) {
      roles.push({
        name: "postgres",
        pids: async () =>
          (
            await monitor.query<{ pid: number }>(
              "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
            )
          ).rows.map((r) => r.pid),
      });
      roleHelp["postgres"] = "the Postgres backends connected to the bench database";
      const nats = await pidsByName("nats-server");
      roles.push({ name: "nats", pids: async () => nats });
      roleHelp["nats"] = "nats-server (shared with other work on the machine)";
    }
    roles.push({ name: "bench", pids: async () => [process.pid] }, { name: "watchers", pids: async () => pool.pids() });
    roleHelp["bench"] = "the bench process: load generators and the raw baselines' clients (PGlite raw baseline in-process)";
    roleHelp["watchers"] = `the ${watcherProcesses} watcher processes`;
    const cpu = new CpuMeter(roles);
    out.cpu = cpu.steps;
    out.cpuRoles = roleHelp;
    try {
      if (only.has("send") && raw !== undefined) {
        out.rawLabel = raw.label;
        out.rawBatchedLabel = raw.batchedLabel;
        out.send = await runSend(server, raw, agent, talkIds, settings.send, log, cpu);
      }
      if (only.has("outside") && raw !== undefined) out.outside = await runOutside(server, raw, agent, pool, settings.outside, log, cpu);
      if (only.has("fanout")) {
        out.fanout = await runFanout(server, agent, pool, settings.fanout, log, cpu);
        out.fanoutTargets = await runFanoutTargets(server, agent, pool, settings.fanoutTargets, settings.fanout, log, cpu);
      }
      if (only.has("history")) out.history = await runHistory(server, database, plan, out.seedMs, quick, log, cpu);
      if (only.has("scale")) out.scale = await runScale(server, agent, talkIds, pool, { ...settings.scale, fanout: settings.fanout }, log);
      // --quick measures capacity on the same server (no fresh process per kind).
      if (only.has("capacity") && quick)
        out.capacity = await runCapacity(database, secret, agent, pool, settings.capacity[backend], log, server);
    } finally {
      await monitor?.end().catch(() => undefined);
      await raw?.close();
      await server.stop();
    }
    if (only.has("capacity") && !quick) out.capacity = await runCapacity(database, secret, agent, pool, settings.capacity[backend], log);
    // In the bench process, once the server under test has let go of the database.
    if (only.has("round-trips")) out.roundTrips = await runRoundTrips(database, settings.roundTrips.runs, log);
    if (only.has("send") && args.profile && backend === "postgres" && !quick) {
      const dir = join(resultsDir, `profile-${results.date}`);
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir, { recursive: true });
      const profiled = await startServer({ database, secret, cpuProfDir: dir });
      const { grpcClients } = await import("./server.js");
      const connections = Array.from({ length: 4 }, () => grpcClients(profiled.url, agent.token));
      try {
        const p = settings.profile;
        const point = await talkhubSends(connections, talkIds.slice(0, p.talks), p.concurrency, p.durationMs, 500);
        log(`  profile run (server under --cpu-prof): ${point.sendsPerSec} sends/s at C=${p.concurrency}, ${p.talks} talks`);
      } finally {
        for (const c of connections) c.close();
        await profiled.stop();
      }
      const file = (await readdir(dir)).find((f) => f.endsWith(".cpuprofile"));
      if (file !== undefined) {
        out.profile = await summarizeProfile(join(dir, file));
        log(
          `  profile: ${out.profile.functions
            .slice(0, 5)
            .map((f) => `${f.name} ${f.percent}%`)
            .join(", ")}`,
        );
      }
    }
  } catch (error) {
    const text = `${backend}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`;
    results.errors.push(text);
    log(`ERROR ${text}`);
  } finally {
    await database?.drop();
  }
}

try {
  for (const backend of args.backends) await runBackend(backend);
} finally {
  await pool.stop();
}
results.finishedAt = new Date().toISOString();
results.durationS = round((nowAbs() - startedAt) / 1000, 1);
results.environment.loadAvgAtEnd = loadavg().map((x) => round(x, 2));
const files = await writeReport(resultsDir, results);
log(`wrote ${files.join(", ")} in ${results.durationS} s`);
process.exit(results.errors.length === 0 ? 0 : 1);
