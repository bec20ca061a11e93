/**
 * CPU per acknowledged send, alone: `npx tsx bench/send-cpu.ts [--sends=N] [--concurrency=C]
 * [--talks=T] [--backend=postgres|pglite] [--profile=DIR]`. A fresh database and server (as
 * `npm run bench` starts them), C callers sending N messages round robin over T talks after a
 * warm-up, and the CPU (utime + stime) the server, the Postgres backends of the bench database
 * and nats-server spent over the measured sends, divided by the sends. A count of sends, not a
 * duration, so a loaded machine changes how long it takes, not what is measured. With
 * --profile the server runs under --cpu-prof and its self time by function is printed.
 */
import { spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, readdir, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { cpuMs, pidsByName, ticksPerSecond } from "./cpu.js";
import { seed, talkId, type SeedPlan } from "./history.js";
import { summarizeProfile } from "./profile.js";
import { createDatabase, grpcClients, newAgent, startServer, type Backend } from "./server.js";

const flag = (name: string, fallback: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const sends = Number(flag("sends", "6000"));
const concurrency = Number(flag("concurrency", "32"));
const talks = Number(flag("talks", "100"));
const backend = flag("backend", "postgres") as Backend;
const profileDir = process.argv.includes("--profile")
  ? await mkdtemp(join(tmpdir(), "talkhub-send-prof-"))
  : flag("profile", "") || undefined;

const secret = randomBytes(32).toString("hex");
const database = await createDatabase(backend);
const agent = await newAgent(secret, randomUUID());
const plan: SeedPlan = { key: randomBytes(6).toString("hex"), agent, messages: 10, talks: talks + 1 };
await seed(database, plan);
const talkIds = Array.from({ length: talks }, (_, i) => talkId(plan, i + 2));
const server = await startServer({ database, secret, ...(profileDir === undefined ? {} : { cpuProfDir: profileDir }) });
const monitor = database.url === undefined ? undefined : new pg.Client({ connectionString: database.url });
await monitor?.connect();
const nats = backend === "postgres" ? await pidsByName("nats-server") : [];

/** utime and stime of a process, ms (stime: the kernel's share, the socket writes and wake-ups). */
async function userSystem(pid: number): Promise<[number, number]> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return [(Number(rest[11]) * 1000) / ticksPerSecond, (Number(rest[12]) * 1000) / ticksPerSecond];
}

/** CPU ms by PID of the server, the bench database's Postgres backends and nats-server. */
async function sample(): Promise<{
  server: Map<number, number>;
  serverSystem: number;
  postgres: Map<number, number>;
  nats: Map<number, number>;
}> {
  const backends =
    monitor === undefined
      ? []
      : (
          await monitor.query<{ pid: number }>(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
          )
        ).rows.map((r) => r.pid);
  const times = async (pids: readonly number[]) => {
    const byPid = new Map<number, number>();
    for (const pid of pids) {
      const ms = await cpuMs(pid);
      if (ms !== undefined) byPid.set(pid, ms);
    }
    return byPid;
  };
  const [user, system] = await userSystem(server.pid);
  return { server: new Map([[server.pid, user + system]]), serverSystem: system, postgres: await times(backends), nats: await times(nats) };
}

/** CPU spent between two samples: a process that appeared counts from zero, one that left is not seen. */
function spent(before: Map<number, number>, after: Map<number, number>): number {
  let total = 0;
  for (const [pid, ms] of after) total += ms - (before.get(pid) ?? 0);
  return total;
}

const connections = Array.from({ length: 4 }, () => grpcClients(server.url, agent.token));
async function run(count: number): Promise<number> {
  let next = 0;
  let failed = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const n = next++;
        await connections[n % connections.length]!.messages.sendMessage({
          chatId: talkIds[n % talkIds.length]!,
          text: `bench send ${n}`,
        }).catch(() => failed++);
      }
    }),
  );
  return failed;
}

const nowUs = () => Number(process.hrtime.bigint() / 1000n);
let window = { fromUs: 0, toUs: 0 };
try {
  await run(Math.min(2000, sends));
  const before = await sample();
  const batchesBefore = await server.sendBatches();
  const start = performance.now();
  window = { fromUs: nowUs(), toUs: 0 };
  // On-CPU samples of the server (perf), when asked: a V8 profile samples wall time, so a
  // syscall that wakes Postgres is charged the time the server then waits for a core.
  const perfOut = process.env["SEND_CPU_PERF"];
  const perf =
    perfOut === undefined
      ? undefined
      : spawn("perf", ["record", "-F", "997", "-g", "-p", String(server.pid), "-o", perfOut], { stdio: "ignore" });
  const failed = await run(sends);
  if (perf !== undefined) {
    const exited = new Promise((resolve) => perf.once("exit", resolve));
    perf.kill("SIGINT");
    await exited;
  }
  window.toUs = nowUs();
  const wall = performance.now() - start;
  const after = await sample();
  const batchesAfter = await server.sendBatches();
  const per = (k: "server" | "serverSystem" | "postgres" | "nats") =>
    ((k === "serverSystem" ? after.serverSystem - before.serverSystem : spent(before[k], after[k])) / sends).toFixed(3);
  const batch = (batchesAfter.sum - batchesBefore.sum) / (batchesAfter.count - batchesBefore.count);
  console.log(
    `${backend} C=${concurrency} talks=${talks} sends=${sends} failed=${failed} wall=${Math.round(wall)} ms batch=${batch.toFixed(1)} ` +
      `cpu/send ms: server ${per("server")} (system ${per("serverSystem")}) postgres ${per("postgres")} nats ${per("nats")}`,
  );
} finally {
  for (const c of connections) c.close();
  await monitor?.end();
  await server.stop();
  await database.drop();
}

if (profileDir !== undefined) {
  const file = (await readdir(profileDir)).find((f) => f.endsWith(".cpuprofile"));
  if (file === undefined) console.log(`no profile in ${profileDir}`);
  else {
    const summary = await summarizeProfile(join(profileDir, file), 40, window);
    console.log(
      `profile of the measured sends ${join(profileDir, file)} ${window.fromUs} ${window.toUs}: ${summary.totalMs} ms, idle ${summary.idlePercent}%`,
    );
    for (const f of summary.functions) console.log(`  ${String(f.percent).padStart(5)}%  ${f.name}  ${f.where}`);
    console.log("by package/file:");
    for (const g of summary.groups) console.log(`  ${String(g.percent).padStart(5)}%  ${g.name}`);
  }
}
