/**
 * Multi-process test helpers: Talkhub as a child process (`node --import tsx src/main.ts`), the
 * one way the suites start one; a private nats-server, clients, watchers that record
 * every event they receive, and checks against the event log in Postgres.
 *
 * Every child process started here is recorded by PID; killAllChildren() (afterAll) and an exit
 * hook SIGKILL whatever is still running, so a failing test never leaves processes behind.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestDatabase } from "./database.js";
import { natsProblem, natsServerBinary } from "./reachability.js";
import { setTimeout as sleep } from "node:timers/promises";
import { expect } from "vitest";
import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { Http2SessionManager, createGrpcTransport } from "@connectrpc/connect-node";
import { AgentService } from "../../gen/talk/v1/agent_service_pb.js";
import { MessageService } from "../../gen/talk/v1/message_service_pb.js";
import { TalkService } from "../../gen/talk/v1/talk_service_pb.js";
import { mintToken } from "../../src/auth/tokens.js";

export { sleep };

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));

export { dependenciesReachable, natsServerBinary, postgresAdminUrl, sharedNatsUrl } from "./reachability.js";
export { createTestDatabase, type TestDatabase } from "./database.js";

// ---------------------------------------------------------------------------------------------
// Ports and child processes
// ---------------------------------------------------------------------------------------------

/** A port that was free a moment ago (bind port 0 on 127.0.0.1, read it, close). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      if (address === null || typeof address === "string") return reject(new Error("no port"));
      server.close(() => resolve(address.port));
    });
  });
}

/** Children started by this module and not yet seen to exit, by PID. */
const children = new Map<number, ChildProcess>();

function track(child: ChildProcess): void {
  if (child.pid === undefined) return;
  const pid = child.pid;
  children.set(pid, child);
  child.once("exit", () => children.delete(pid));
}

/** SIGKILLs every child this module started that is still running, and waits for their exits. */
export async function killAllChildren(): Promise<void> {
  const running = [...children.values()];
  await Promise.all(running.map((child) => signalAndWait(child, "SIGKILL", 5000)));
}

process.once("exit", () => {
  for (const [pid] of children) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
});

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Sends a signal to one child (by its PID) and waits up to `timeoutMs` for it to exit. */
async function signalAndWait(child: ChildProcess, signal: NodeJS.Signals, timeoutMs: number): Promise<boolean> {
  if (exited(child)) return true;
  const exit = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  try {
    if (child.pid !== undefined) process.kill(child.pid, signal);
  } catch {
    // It exited between the check and the signal.
  }
  const timer = sleep(timeoutMs).then(() => false);
  return Promise.race([exit.then(() => true), timer]);
}

/** Stops a child gracefully (SIGTERM), escalating to SIGKILL after `graceMs`. */
async function terminate(child: ChildProcess, graceMs: number): Promise<void> {
  if (await signalAndWait(child, "SIGTERM", graceMs)) return;
  await signalAndWait(child, "SIGKILL", 5000);
}

/** Keeps the last `limit` characters of a stream's output. */
function tail(limit: number) {
  let text = "";
  return {
    add: (chunk: Buffer | string) => {
      text += chunk.toString();
      if (text.length > limit) text = text.slice(text.length - limit);
    },
    get text() {
      return text;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Talkhub processes
// ---------------------------------------------------------------------------------------------

export interface TalkhubProcess {
  readonly port: number;
  /** http://127.0.0.1:<port> */
  readonly url: string;
  readonly pid: number;
  /** SIGTERM, then SIGKILL if it does not exit within 10 s. */
  stop(): Promise<void>;
  /** SIGKILL, and wait for the exit. */
  kill(): Promise<void>;
  readonly exited: boolean;
  /** Whether the process is still running. */
  alive(): boolean;
  /** The last output, for failure messages. */
  stdout(): string;
  stderr(): string;
  /** stdout and stderr together (each in arrival order, stdout first). */
  output(): string;
}

/** Env variables of the test process that must not leak into a Talkhub child. */
const inheritedButOurs = /^(DATABASE_URL|NATS_URL|TALKHUB_.*)$/;

/** This process's environment without the variables that configure Talkhub. */
function cleanedEnv(): Record<string, string> {
  const base: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !inheritedButOurs.test(key)) base[key] = value;
  }
  return base;
}

/**
 * Starts `node --import tsx <script>` in the repository with `env` on top of a cleaned copy of
 * this environment, tracked by PID, keeping the last of its output.
 */
function spawnTsx(script: string, env: Record<string, string>) {
  const child = spawn(process.execPath, ["--import", "tsx", script], {
    cwd: repoRoot,
    env: { ...cleanedEnv(), ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  track(child);
  const out = tail(20_000);
  const err = tail(20_000);
  child.stdout?.on("data", (chunk: Buffer) => out.add(chunk));
  child.stderr?.on("data", (chunk: Buffer) => err.add(chunk));
  return { child, out, err };
}

export interface CommandResult {
  /** The exit status; null when a signal (or the timeout) ended it. */
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs one of Talkhub's commands (`src/cli/<name>.ts`, as `npm run <name>` does from dist/) with
 * `env` on top of a cleaned copy of this environment, to its exit (SIGKILL after `timeoutMs`).
 */
export async function runTalkhubCommand(name: string, env: Record<string, string>, timeoutMs = 60_000): Promise<CommandResult> {
  const { child, out, err } = spawnTsx(`src/cli/${name}.ts`, env);
  const timer = setTimeout(() => void signalAndWait(child, "SIGKILL", 5000), timeoutMs);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    // "close": the output is complete, not only the process gone.
    child.once("close", (exitCode) => resolve(exitCode));
  }).finally(() => clearTimeout(timer));
  return { code, stdout: out.text, stderr: err.text };
}

/** src/main.ts's environment in tests: loopback, free ports, its own data dir, then `env`. */
function mainEnv(dataDir: string, env: Record<string, string>): Record<string, string> {
  return { TALKHUB_HOST: "127.0.0.1", TALKHUB_PORT: "0", TALKHUB_OPERATOR_PORT: "0", TALKHUB_DATA_DIR: dataDir, ...env };
}

/**
 * Runs `node --import tsx src/main.ts` as spawnTalkhub does (its own data dir, free ports) to
 * its exit (SIGKILL after `timeoutMs`): for the start-ups that must fail.
 */
export async function runTalkhub(env: Record<string, string>, timeoutMs = 60_000): Promise<CommandResult> {
  const dataDir = await mkdtemp(join(tmpdir(), "talkhub-proc-"));
  try {
    const { child, out, err } = spawnTsx("src/main.ts", mainEnv(dataDir, env));
    const timer = setTimeout(() => void signalAndWait(child, "SIGKILL", 5000), timeoutMs);
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once("error", reject);
      child.once("close", (exitCode) => resolve(exitCode));
    }).finally(() => clearTimeout(timer));
    return { code, stdout: out.text, stderr: err.text };
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
}

/**
 * Starts `node --import tsx src/main.ts` with `env` on top of a cleaned copy of this process's
 * environment, and waits (at most `timeoutMs`) for "Talkhub listening on :<port>". Without
 * DATABASE_URL it runs the embedded database, in a data dir of its own removed after the exit.
 */
export async function spawnTalkhub(env: Record<string, string>, timeoutMs = 30_000): Promise<TalkhubProcess> {
  const dataDir = await mkdtemp(join(tmpdir(), "talkhub-proc-"));
  const removeDataDir = () => rm(dataDir, { recursive: true, force: true });
  const { child, out, err } = spawnTsx("src/main.ts", mainEnv(dataDir, env));
  if (process.env["TALKHUB_TEST_VERBOSE"] === "1") {
    child.stderr?.on("data", (chunk: Buffer) => console.error(`[talkhub ${child.pid}] ${chunk.toString()}`));
  }

  const port = await new Promise<number>((resolve, reject) => {
    const fail = (why: string) => {
      cleanup();
      void signalAndWait(child, "SIGKILL", 5000).then(removeDataDir);
      reject(new Error(`Talkhub did not start: ${why}\n--- stderr ---\n${err.text}\n--- stdout ---\n${out.text}`));
    };
    const onData = () => {
      const match = /Talkhub listening on :(\d+)/.exec(out.text);
      if (match?.[1] !== undefined) {
        cleanup();
        resolve(Number(match[1]));
      }
    };
    const onExit = (code: number | null, signal: string | null) => fail(`exited (code ${code}, signal ${signal})`);
    const onError = (error: Error) => fail(`spawn error: ${String(error)}`);
    const timer = setTimeout(() => fail(`no listening line within ${timeoutMs} ms`), timeoutMs);
    const cleanup = () => {
      clearTimeout(timer);
      child.stdout?.off("data", onData);
      child.off("exit", onExit);
      child.off("error", onError);
    };
    child.stdout?.on("data", onData);
    child.once("exit", onExit);
    child.once("error", onError);
  });

  return {
    port,
    url: `http://127.0.0.1:${port}`,
    pid: child.pid ?? -1,
    stop: async () => {
      await terminate(child, 10_000);
      await removeDataDir();
    },
    kill: async () => {
      await signalAndWait(child, "SIGKILL", 5000);
      await removeDataDir();
    },
    get exited() {
      return exited(child);
    },
    alive: () => !exited(child),
    stdout: () => out.text,
    stderr: () => err.text,
    output: () => out.text + err.text,
  };
}

// ---------------------------------------------------------------------------------------------
// A private nats-server
// ---------------------------------------------------------------------------------------------

export interface NatsServer {
  readonly port: number;
  /** nats://127.0.0.1:<port> */
  readonly url: string;
  /** The PID of the server running now (undefined while stopped). */
  readonly pid: number | undefined;
  /** SIGTERM (SIGKILL after 5 s). */
  stop(): Promise<void>;
  /** SIGKILL. */
  kill(): Promise<void>;
  /** Starts it again on the same port (stopping it first if it runs). */
  restart(): Promise<void>;
}

/** Waits until something accepts TCP connections on 127.0.0.1:port and greets with INFO. */
async function waitForNats(port: number, child: ChildProcess, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !exited(child)) {
    if ((await natsProblem(`nats://127.0.0.1:${port}`)) === undefined) return true;
    await sleep(50);
  }
  return false;
}

/**
 * Starts `nats-server -a 127.0.0.1 -p <port>` (a free port when none is given); `args` are added
 * to its command line (e.g. `-c <config file>`).
 */
/**
 * A private nats-server whose clients may subscribe to anything but whose publishes on any of
 * `subjects` the server refuses: a bus that loses those messages, without touching the code.
 * Its stop also removes its config.
 */
export async function startNatsDenyingPublish(subjects: readonly string[]): Promise<NatsServer> {
  const dir = await mkdtemp(join(tmpdir(), "talkhub-nats-"));
  const config = join(dir, "nats.conf");
  const deny = subjects.map((subject) => JSON.stringify(subject)).join(", ");
  await writeFile(
    config,
    [
      "authorization {",
      `  users = [ { user: "lossy", password: "lossy", permissions: { publish: { deny: [${deny}] } } } ]`,
      "}",
      'no_auth_user: "lossy"',
      "",
    ].join("\n"),
  );
  const nats = await startNats(undefined, ["-c", config]);
  return {
    port: nats.port,
    url: nats.url,
    get pid() {
      return nats.pid;
    },
    stop: async () => {
      await nats.stop();
      await rm(dir, { recursive: true, force: true });
    },
    kill: () => nats.kill(),
    restart: () => nats.restart(),
  };
}

export async function startNats(port?: number, args: readonly string[] = []): Promise<NatsServer> {
  const natsPort = port ?? (await freePort());
  let child: ChildProcess | undefined;
  let err = tail(10_000);

  const launch = async () => {
    // The port may still be held for a moment after a stop; try a few times.
    for (let attempt = 1; attempt <= 10; attempt++) {
      err = tail(10_000);
      const started = spawn(natsServerBinary, ["-a", "127.0.0.1", "-p", String(natsPort), ...args], {
        stdio: ["ignore", "pipe", "pipe"],
      });
      track(started);
      started.stdout?.on("data", (chunk: Buffer) => err.add(chunk));
      started.stderr?.on("data", (chunk: Buffer) => err.add(chunk));
      if (await waitForNats(natsPort, started, 10_000)) {
        child = started;
        return;
      }
      await signalAndWait(started, "SIGKILL", 5000);
      await sleep(200);
    }
    throw new Error(`nats-server did not start on port ${natsPort}:\n${err.text}`);
  };

  await launch();
  return {
    port: natsPort,
    url: `nats://127.0.0.1:${natsPort}`,
    get pid() {
      return child !== undefined && !exited(child) ? child.pid : undefined;
    },
    stop: async () => {
      if (child !== undefined) await terminate(child, 5000);
    },
    kill: async () => {
      if (child !== undefined) await signalAndWait(child, "SIGKILL", 5000);
    },
    restart: async () => {
      if (child !== undefined) await terminate(child, 5000);
      await launch();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Clients and agents
// ---------------------------------------------------------------------------------------------

export interface Clients {
  readonly talks: Client<typeof TalkService>;
  readonly messages: Client<typeof MessageService>;
  readonly agents: Client<typeof AgentService>;
  /** Closes the HTTP/2 connection. */
  close(): void;
}

/** gRPC (HTTP/2) clients of one Talkhub process, with `Authorization: Bearer <token>`. */
export function clientsFor(baseUrl: string, token: string): Clients {
  const auth: Interceptor = (next) => async (request) => {
    request.header.set("authorization", `Bearer ${token}`);
    return next(request);
  };
  const sessionManager = new Http2SessionManager(baseUrl);
  const transport = createGrpcTransport({ baseUrl, sessionManager, interceptors: [auth] });
  return {
    talks: createClient(TalkService, transport),
    messages: createClient(MessageService, transport),
    agents: createClient(AgentService, transport),
    close: () => sessionManager.abort(),
  };
}

export interface AgentIdentity {
  readonly id: string;
  readonly customerId: string;
  readonly name: string;
  readonly token: string;
}

export async function newAgent(secret: string, customerId: string, name: string): Promise<AgentIdentity> {
  const id = randomUUID();
  return { id, customerId, name, token: await mintToken(secret, { customerId, agentId: id, name }) };
}

export const newSecret = (): string => randomBytes(32).toString("hex");
export const newPrefix = (): string => `t${randomBytes(6).toString("hex")}`;

/** The environment of a Talkhub process for these tests. */
export function talkhubEnv(options: { databaseUrl: string; natsUrl: string; secret: string; prefix: string }): Record<string, string> {
  return {
    DATABASE_URL: options.databaseUrl,
    NATS_URL: options.natsUrl,
    TALKHUB_PORT: "0",
    TALKHUB_HOST: "127.0.0.1",
    TALKHUB_JWT_SECRET: options.secret,
    TALKHUB_NATS_PREFIX: options.prefix,
    TALKHUB_GAP_CHECK_MS: "200",
    TALKHUB_HEARTBEAT_MS: "2000",
    // These tests load one agent far past the production abuse limits on purpose.
    TALKHUB_SEND_RATE: "0",
    TALKHUB_TALK_CREATE_RATE: "0",
    TALKHUB_STREAMS_PER_AGENT: "0",
  };
}

// ---------------------------------------------------------------------------------------------
// Watchers
// ---------------------------------------------------------------------------------------------

export interface SeenEvent {
  readonly seq: number;
  readonly type: string;
  readonly chatId: string;
}

/** A running WatchTalk or WatchEvents stream that records what it receives. */
export interface Watcher {
  readonly name: string;
  readonly events: SeenEvent[];
  readonly heartbeats: number;
  /** The error that ended the stream (not counting our own cancel), if it ended. */
  readonly error: ConnectError | undefined;
  readonly ended: boolean;
  /** Cancels the stream and waits for it to end. */
  cancel(): Promise<void>;
  /** Resolves once the first item (event or heartbeat) arrived; rejects after `timeoutMs`. */
  started(timeoutMs?: number): Promise<void>;
}

function record(
  name: string,
  open: (signal: AbortSignal) => AsyncIterable<{
    kind:
      | { case: "event"; value: { seq: bigint; type: string; chatId: string } }
      | { case: "heartbeat"; value: unknown }
      | { case: undefined; value?: undefined };
  }>,
): Watcher {
  const controller = new AbortController();
  const events: SeenEvent[] = [];
  let heartbeats = 0;
  let error: ConnectError | undefined;
  let ended = false;
  let markStarted: () => void = () => undefined;
  const first = new Promise<void>((resolve) => (markStarted = resolve));
  const done = (async () => {
    try {
      for await (const response of open(controller.signal)) {
        markStarted();
        if (response.kind.case === "event") {
          const { seq, type, chatId } = response.kind.value;
          events.push({ seq: Number(seq), type, chatId });
        } else if (response.kind.case === "heartbeat") {
          heartbeats++;
        }
      }
      error = new ConnectError(`${name}: the stream ended without an error`, Code.Unknown);
    } catch (reason) {
      if (!controller.signal.aborted) error = ConnectError.from(reason);
    } finally {
      ended = true;
      markStarted();
    }
  })();
  return {
    name,
    events,
    get heartbeats() {
      return heartbeats;
    },
    get error() {
      return error;
    },
    get ended() {
      return ended;
    },
    cancel: async () => {
      controller.abort();
      await Promise.race([done, sleep(5000)]);
    },
    started: async (timeoutMs = 10_000) => {
      const timedOut = sleep(timeoutMs).then(() => "timeout" as const);
      if ((await Promise.race([first.then(() => "ok" as const), timedOut])) === "timeout") {
        throw new Error(`${name}: no first item within ${timeoutMs} ms`);
      }
      if (error !== undefined) throw new Error(`${name}: ended before starting: ${error.message}`);
    },
  };
}

export function watchTalk(name: string, clients: Clients, chatId: string, afterSeq: number): Watcher {
  return record(name, (signal) => clients.talks.watchTalk({ chatId, afterSeq: BigInt(afterSeq) }, { signal }));
}

export function watchEvents(name: string, clients: Clients): Watcher {
  return record(name, (signal) => clients.talks.watchEvents({ cursor: "" }, { signal }));
}

// ---------------------------------------------------------------------------------------------
// The event log, and checks against it
// ---------------------------------------------------------------------------------------------

export interface LoggedEvent {
  readonly seq: number;
  readonly type: string;
}

export async function eventLog(db: TestDatabase, chatId: string): Promise<LoggedEvent[]> {
  const rows = await db.query<{ seq: string; type: string }>("SELECT seq, type FROM events WHERE chat_id = $1 ORDER BY seq", [chatId]);
  return rows.map((row) => ({ seq: Number(row.seq), type: row.type }));
}

/** The seq of the participant_joined / participant_left event of an agent. */
export async function participantEventSeq(
  db: TestDatabase,
  chatId: string,
  type: "participant_joined" | "participant_left",
  agentId: string,
): Promise<number> {
  const rows = await db.query<{ seq: string }>(
    "SELECT seq FROM events WHERE chat_id = $1 AND type = $2 AND payload->'participant'->>'ownerId' = $3 ORDER BY seq",
    [chatId, type, agentId],
  );
  expect(rows.length, `${type} events of agent ${agentId}`).toBe(1);
  return Number(rows[0]?.seq);
}

export const range = (from: number, to: number): number[] => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);

/** A one-line summary of where a seq list departs from from..to, for failure messages. */
export function describeSeqs(seqs: readonly number[], from: number, to: number): string {
  const dupes = seqs.filter((seq, i) => seqs.indexOf(seq) !== i);
  const have = new Set(seqs);
  const missing = range(from, to).filter((seq) => !have.has(seq));
  const disorder = seqs.findIndex((seq, i) => i > 0 && seq <= (seqs[i - 1] ?? 0));
  return (
    `got ${seqs.length} events (first ${seqs[0]}, last ${seqs.at(-1)}), expected ${from}..${to}; ` +
    `missing ${missing.length}${missing.length > 0 ? ` e.g. ${missing.slice(0, 10).join(",")}` : ""}; ` +
    `duplicates ${dupes.length}${dupes.length > 0 ? ` e.g. ${dupes.slice(0, 10).join(",")}` : ""}; ` +
    `first out-of-order index ${disorder}`
  );
}

/**
 * Asserts that a watcher received exactly the log's events from..to of one talk, in seq order,
 * without gap or duplicate, with the log's types.
 */
export function expectExactly(watcher: Watcher, chatId: string, log: readonly LoggedEvent[], from: number, to: number): void {
  const seen = watcher.events.filter((event) => event.chatId === chatId);
  const seqs = seen.map((event) => event.seq);
  expect(seqs, `${watcher.name}: ${describeSeqs(seqs, from, to)}`).toEqual(range(from, to));
  const expected = log.filter((event) => event.seq >= from && event.seq <= to);
  expect(
    seen.map((event) => ({ seq: event.seq, type: event.type })),
    `${watcher.name}: event types differ from the log`,
  ).toEqual(expected);
}

/** Asserts the log itself is 1..N without gaps and returns N. */
export function expectContiguousLog(log: readonly LoggedEvent[]): number {
  const seqs = log.map((event) => event.seq);
  expect(seqs, `the event log: ${describeSeqs(seqs, 1, log.length)}`).toEqual(range(1, log.length));
  return log.length;
}

/** Whether every watcher has at least the talk's events up to `head` (or ended). */
export function watchersReached(watchers: readonly Watcher[], chatId: string, head: (w: Watcher) => number): boolean {
  return watchers.every((watcher) => {
    if (watcher.ended) return true;
    const last = watcher.events.filter((event) => event.chatId === chatId).at(-1)?.seq ?? 0;
    return last >= head(watcher);
  });
}

/** Runs `tasks` with at most `concurrency` at a time; resolves with their results in order. */
export async function pool<T>(count: number, concurrency: number, task: (index: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array<T>(count);
  let next = 0;
  const workers = Array.from({ length: Math.min(concurrency, count) }, async () => {
    while (next < count) {
      const index = next++;
      results[index] = await task(index);
    }
  });
  await Promise.all(workers);
  return results;
}

// ---------------------------------------------------------------------------------------------
// A suite of processes
// ---------------------------------------------------------------------------------------------

/**
 * What a multi-process suite holds: its database, the processes it starts and the clients and
 * watchers it opens; close() ends them all.
 */
export class ProcessSuite {
  db: TestDatabase | undefined;
  readonly processes: TalkhubProcess[] = [];
  readonly #opened: Clients[] = [];
  readonly #watchers: Watcher[] = [];

  /** Clients of an agent on a process, closed with the suite. */
  readonly on = (process: TalkhubProcess | undefined, agent: AgentIdentity): Clients => {
    if (process === undefined) throw new Error("process not started");
    const clients = clientsFor(process.url, agent.token);
    this.#opened.push(clients);
    return clients;
  };

  /** A watcher cancelled with the suite. */
  readonly keep = (watcher: Watcher): Watcher => {
    this.#watchers.push(watcher);
    return watcher;
  };

  readonly database = (): TestDatabase => {
    if (this.db === undefined) throw new Error("database not created");
    return this.db;
  };

  /** Starts processes at once; on a fresh database they run the migrations concurrently. */
  async spawn(count: number, env: Record<string, string>): Promise<TalkhubProcess[]> {
    const settled = await Promise.allSettled(Array.from({ length: count }, () => spawnTalkhub(env)));
    const started = settled.flatMap((result) => (result.status === "fulfilled" ? [result.value] : []));
    this.processes.push(...started);
    const failed = settled.find((result) => result.status === "rejected");
    if (failed !== undefined) throw failed.reason;
    return started;
  }

  async close(): Promise<void> {
    await Promise.all(this.#watchers.map((watcher) => watcher.cancel()));
    for (const clients of this.#opened) clients.close();
    await Promise.all(this.processes.map((process) => process.stop()));
    await killAllChildren();
    await this.db?.drop();
  }
}
