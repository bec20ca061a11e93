/**
 * Talkhub under test as a child process (`node --import tsx src/main.ts`), its database
 * (a fresh bench_<hex> Postgres database, or a PGlite data directory), gRPC clients and agents.
 * Every child started here is tracked by PID and SIGKILLed on exit if it is still running.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { sql } from "kysely";
import { createClient, type Client } from "@connectrpc/connect";
import { MessageService } from "../gen/talk/v1/message_service_pb.js";
import { TalkService } from "../gen/talk/v1/talk_service_pb.js";
import { mintToken } from "../src/auth/tokens.js";
import { openDatabase } from "../src/store/database.js";
import { createLeanTransport } from "./lean-transport.js";

export const repoRoot = fileURLToPath(new URL("..", import.meta.url));
export const postgresAdminUrl = process.env["BENCH_DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test";
export const natsUrl = process.env["BENCH_NATS_URL"] ?? "nats://127.0.0.1:4222";

export type Backend = "postgres" | "pglite";

// ------------------------------------------------------------------------------------------
// Child process tracking
// ------------------------------------------------------------------------------------------

const children = new Map<number, ChildProcess>();

export function track(child: ChildProcess): void {
  const pid = child.pid;
  if (pid === undefined) return;
  children.set(pid, child);
  child.once("exit", () => children.delete(pid));
}

process.once("exit", () => {
  for (const pid of children.keys()) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // gone already
    }
  }
});

export function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

export async function stopChild(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (exited(child)) return;
  const done = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  if (child.pid !== undefined) process.kill(child.pid, "SIGTERM");
  const timer = setTimeout(() => {
    if (!exited(child) && child.pid !== undefined) process.kill(child.pid, "SIGKILL");
  }, graceMs);
  await done;
  clearTimeout(timer);
}

// ------------------------------------------------------------------------------------------
// Databases
// ------------------------------------------------------------------------------------------

export interface BenchDatabase {
  readonly backend: Backend;
  /** Postgres: the bench database URL. */
  readonly url: string | undefined;
  /** PGlite: the data dir (TALKHUB_DATA_DIR). */
  readonly dataDir: string;
  /** Runs statements in the (migrated) database; only while no server owns a PGlite dir. */
  exec(statements: readonly string[]): Promise<void>;
  drop(): Promise<void>;
}

/**
 * A fresh, migrated database: Postgres bench_<hex>, or a PGlite data dir. Migration uses the
 * service's own migrator so the schema is exactly the one the server expects.
 */
export async function createDatabase(backend: Backend): Promise<BenchDatabase> {
  const dataDir = await mkdtemp(join(tmpdir(), "talkhub-bench-"));
  if (backend === "pglite") {
    return {
      backend,
      url: undefined,
      dataDir,
      exec: async (statements) => {
        const database = await openDatabase({ kind: "pglite", dataDir });
        try {
          for (const statement of statements) await sql.raw(statement).execute(database.db);
        } finally {
          await database.close();
        }
      },
      drop: () => rm(dataDir, { recursive: true, force: true }),
    };
  }
  const name = `bench_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: postgresAdminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const url = new URL(postgresAdminUrl);
  url.pathname = `/${name}`;
  const migrated = await openDatabase({ kind: "postgres", url: url.toString(), poolSize: 1 });
  await migrated.close();
  return {
    backend,
    url: url.toString(),
    dataDir,
    exec: async (statements) => {
      const client = new pg.Client({ connectionString: url.toString() });
      await client.connect();
      try {
        for (const statement of statements) await client.query(statement);
      } finally {
        await client.end();
      }
    },
    drop: async () => {
      try {
        await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await admin.end().catch(() => undefined);
        await rm(dataDir, { recursive: true, force: true });
      }
    },
  };
}

// ------------------------------------------------------------------------------------------
// The server under test
// ------------------------------------------------------------------------------------------

export interface ServerOptions {
  readonly database: BenchDatabase;
  readonly secret: string;
  /** Write a V8 CPU profile into this directory when the server exits. */
  readonly cpuProfDir?: string;
}

export interface Server {
  readonly backend: Backend;
  readonly url: string;
  readonly pid: number;
  readonly natsPrefix: string | undefined;
  /** VmRSS of the server process, bytes. */
  rss(): Promise<number>;
  /** Selected /metrics values (process RSS, V8 heap used/total), bytes. */
  metrics(): Promise<{ rss: number; heapUsed: number; heapTotal: number }>;
  /** Memory right after a forced full GC in the server (bench/gc-hook.ts), bytes. */
  memoryAfterGc(): Promise<{ rss: number; heapUsed: number }>;
  /** The send batch size histogram's sum and count (talkhub_send_batch_size), cumulative. */
  sendBatches(): Promise<{ sum: number; count: number }>;
  stop(): Promise<void>;
}

const ourEnv = /^(DATABASE_URL|NATS_URL|TALKHUB_.*)$/;

/** The server's database pool (TALKHUB_DB_POOL_SIZE), set explicitly so the report can say it. */
export const serverDbPool = 10;

export async function startServer(options: ServerOptions): Promise<Server> {
  const { database } = options;
  const env: Record<string, string> = {};
  const natsPrefix = database.backend === "postgres" ? `bench${randomBytes(6).toString("hex")}` : undefined;
  Object.assign(env, {
    TALKHUB_HOST: "127.0.0.1",
    TALKHUB_PORT: "0",
    TALKHUB_OPERATOR_PORT: "0",
    TALKHUB_JWT_SECRET: options.secret,
    TALKHUB_DATA_DIR: database.dataDir,
    // The default "info" writes a JSON line per RPC to stdout; the bench measures the service.
    TALKHUB_LOG_LEVEL: "warn",
    // The per-agent abuse limits (sends/s, talk creations, streams per agent) would measure the
    // limiter, not the service: the bench drives everything as one agent, so they are off.
    TALKHUB_SEND_RATE: "0",
    TALKHUB_TALK_CREATE_RATE: "0",
    TALKHUB_STREAMS_PER_AGENT: "0",
  });
  if (database.backend === "postgres") {
    env["DATABASE_URL"] = database.url ?? "";
    env["TALKHUB_DB_POOL_SIZE"] = String(serverDbPool);
    env["NATS_URL"] = natsUrl;
    env["TALKHUB_NATS_PREFIX"] = natsPrefix ?? "";
  }
  // --expose-gc and the GC hook: heap figures are taken after a forced full collection.
  const nodeArgs = [...gcHookArgs];
  if (options.cpuProfDir !== undefined) nodeArgs.push("--cpu-prof", `--cpu-prof-dir=${options.cpuProfDir}`);
  const { child, port, operatorPort } = await spawnTalkhub("Talkhub", env, nodeArgs);
  const url = `http://127.0.0.1:${port}`;
  const pid = child.pid ?? -1;
  const metricsText = async () => (await fetch(`http://127.0.0.1:${operatorPort}/metrics`)).text();
  return {
    backend: database.backend,
    url,
    pid,
    natsPrefix,
    rss: async () => {
      const status = await readFile(`/proc/${pid}/status`, "utf8");
      const kb = /VmRSS:\s+(\d+)\s+kB/.exec(status)?.[1];
      return Number(kb) * 1024;
    },
    memoryAfterGc: () => gcIn(child),
    sendBatches: async () => {
      const text = await metricsText();
      const value = (name: string) => Number(new RegExp(`^${name} ([0-9.e+]+)`, "m").exec(text)?.[1] ?? NaN);
      return { sum: value("talkhub_send_batch_size_sum"), count: value("talkhub_send_batch_size_count") };
    },
    metrics: async () => {
      const text = await metricsText();
      const value = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+]+)`, "m").exec(text)?.[1] ?? NaN);
      return {
        rss: value("process_resident_memory_bytes"),
        heapUsed: value("nodejs_heap_size_used_bytes"),
        heapTotal: value("nodejs_heap_size_total_bytes"),
      };
    },
    // Shutdown is not what the bench measures: a second of grace, then SIGKILL.
    stop: () => stopChild(child, 1_000),
  };
}

let gcRequests = 0;

/** Node arguments that load the GC hook (bench/gc-hook.ts) into a Talkhub child. */
export const gcHookArgs: readonly string[] = ["--expose-gc", "--import", "tsx", "--import", "./bench/gc-hook.ts"];

/** Asks the server's GC hook for a full collection; answers its memory after it. */
export function gcIn(child: ChildProcess): Promise<{ rss: number; heapUsed: number }> {
  const id = ++gcRequests;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error("no answer from the GC hook within 30 s")), 30_000);
    const onMessage = (message: { op?: string; id?: number; rss?: number; heapUsed?: number }) => {
      if (message.op === "gc" && message.id === id) done(undefined, { rss: message.rss ?? NaN, heapUsed: message.heapUsed ?? NaN });
    };
    function done(error: Error | undefined, value?: { rss: number; heapUsed: number }) {
      clearTimeout(timer);
      child.off("message", onMessage);
      if (error !== undefined) reject(error);
      else resolve(value!);
    }
    child.on("message", onMessage);
    child.send({ op: "gc", id });
  });
}

/**
 * Starts `src/main.ts` as a child process with `env` (on top of this process's environment,
 * less its own Talkhub variables) and waits for its "listening" line.
 */
export async function spawnTalkhub(
  name: string,
  env: Record<string, string>,
  nodeArgs: readonly string[] = ["--import", "tsx"],
): Promise<{ child: ChildProcess; port: number; operatorPort: number; stderr: () => string }> {
  const base: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) if (value !== undefined && !ourEnv.test(key)) base[key] = value;
  // An IPC channel for the GC hook (bench/gc-hook.ts), when it is loaded.
  const stdio: ("ignore" | "pipe" | "ipc")[] = ["ignore", "pipe", "pipe"];
  if (nodeArgs.includes("./bench/gc-hook.ts")) stdio.push("ipc");
  const child = spawn(process.execPath, [...nodeArgs, "src/main.ts"], { cwd: repoRoot, env: { ...base, ...env }, stdio });
  track(child);
  let out = "";
  let err = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    out = (out + chunk.toString()).slice(-10_000);
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    err = (err + chunk.toString()).slice(-10_000);
  });
  const { port, operatorPort } = await new Promise<{ port: number; operatorPort: number }>((resolve, reject) => {
    const timer = setTimeout(() => fail("no listening line within 60 s"), 60_000);
    const onData = () => {
      const match = /Talkhub listening on :(\d+).*operator endpoints .*? on \S+:(\d+),/.exec(out);
      if (match?.[1] !== undefined && match[2] !== undefined) {
        cleanup();
        resolve({ port: Number(match[1]), operatorPort: Number(match[2]) });
      }
    };
    const onExit = (code: number | null) => fail(`exited with ${code}`);
    function cleanup() {
      clearTimeout(timer);
      child.stdout?.off("data", onData);
      child.off("exit", onExit);
    }
    function fail(why: string) {
      cleanup();
      if (!exited(child) && child.pid !== undefined) process.kill(child.pid, "SIGKILL");
      reject(new Error(`${name} did not start: ${why}\n${err}`));
    }
    child.stdout?.on("data", onData);
    child.once("exit", onExit);
  });
  return { child, port, operatorPort, stderr: () => err };
}

// ------------------------------------------------------------------------------------------
// Agents and clients
// ------------------------------------------------------------------------------------------

export interface BenchAgent {
  readonly id: string;
  readonly customerId: string;
  readonly token: string;
}

export async function newAgent(secret: string, customerId: string = randomUUID(), id: string = randomUUID()): Promise<BenchAgent> {
  return { id, customerId, token: await mintToken(secret, { customerId, agentId: id, name: "bench" }) };
}

export interface Clients {
  readonly talks: Client<typeof TalkService>;
  readonly messages: Client<typeof MessageService>;
  close(): void;
}

/** gRPC clients over one HTTP/2 connection of their own (see lean-transport.ts). */
export function grpcClients(baseUrl: string, token: string): Clients {
  const transport = createLeanTransport(baseUrl, { authorization: `Bearer ${token}` });
  return {
    talks: createClient(TalkService, transport),
    messages: createClient(MessageService, transport),
    close: () => transport.close(),
  };
}

/** Runs `work(i)` for i in 0..count-1 with at most `concurrency` in flight. */
export async function pool<T>(count: number, concurrency: number, work: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  const lanes = Array.from({ length: Math.min(concurrency, count) }, async () => {
    while (next < count) {
      const i = next++;
      results[i] = await work(i);
    }
  });
  await Promise.all(lanes);
  return results;
}
