/**
 * Start-up failures an operator can act on, on the real process: every bad variable reported at
 * once, one line each and no stack; unknown TALKHUB_* variables warned about with the nearest
 * name; NATS and Postgres that do not answer retried (each attempt logged) and then given up in
 * one line naming the variable and the server, exit status 1; a Postgres that comes up during
 * the retries is used. Once running, NATS drops and returns are logged, a refused token says why
 * at debug level, and /metrics keeps the standard process_* and nodejs_* names.
 */
import { createServer, connect as tcpConnect, type Server, type Socket } from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { mintToken } from "../../src/auth/tokens.js";
import { createTestDatabase } from "../support/database.js";
import { dependenciesReachable } from "../support/reachability.js";
import {
  clientsFor,
  freePort,
  killAllChildren,
  newSecret,
  runTalkhub,
  sleep,
  spawnTalkhub,
  startNats,
  type CommandResult,
  type TalkhubProcess,
} from "../support/processes.js";

afterAll(async () => {
  await killAllChildren();
});

/** Runs a start that must fail, to its exit (minutes allowed: the test machine may be loaded). */
const start = (env: Record<string, string>) => runTalkhub(env, 180_000);

type LogLine = Record<string, unknown> & { msg?: string };

/** The JSON log lines of a process's stdout. */
function logLines(stdout: string): LogLine[] {
  return stdout
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as LogLine);
}

/** Asserts a refused start: exit status 1, nothing listening, no stack trace; returns stderr's lines. */
function refusedLines(result: CommandResult): string[] {
  const all = `${result.stdout}\n${result.stderr}`;
  expect(result.code, all).toBe(1);
  expect(all).not.toContain("Talkhub listening");
  expect(all).not.toMatch(/\n\s+at /);
  return result.stderr.trim().split("\n");
}

async function waitFor(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await sleep(100);
  }
}

describe("configuration errors", () => {
  it("reports every bad variable at once, one line each, and warns about unknown TALKHUB_* names", async () => {
    const result = await start({
      TALKHUB_PORT: "eighty",
      TALKHUB_LOG_LEVEL: "loud",
      TALKHUB_SEND_RATE: "-1",
      TALKHUB_LOG_LEVL: "debug",
      TALKHUB_WHATEVER: "1",
    });
    const lines = refusedLines(result);
    expect(lines).toEqual([
      "Talkhub: TALKHUB_LOG_LEVL is not a Talkhub variable and is ignored; did you mean TALKHUB_LOG_LEVEL?",
      "Talkhub: TALKHUB_WHATEVER is not a Talkhub variable and is ignored",
      'Talkhub not started: TALKHUB_PORT: expected an integer from 0 to 65535, got "eighty"',
      'Talkhub not started: TALKHUB_LOG_LEVEL: expected one of fatal, error, warn, info, debug, trace, silent, got "loud"',
      'Talkhub not started: TALKHUB_SEND_RATE: expected a number from 0 to 1000000, got "-1"',
    ]);
  }, 240_000);

  it("refuses a malformed NATS_URL in one line naming it", async () => {
    const result = await start({ NATS_URL: "nats://127.0.0.1:4222,nats://127.0.0.1:notaport" });
    expect(refusedLines(result)).toEqual([
      'Talkhub not started: NATS_URL: "nats://127.0.0.1:notaport" is not a NATS server: expected nats://host:port (or tls://, or host:port), comma-separated',
    ]);
  }, 240_000);
});

describe("servers that do not answer at start", () => {
  it("gives up on a NATS that never answers after TALKHUB_NATS_STARTUP_TIMEOUT_MS, each attempt logged", async () => {
    const port = await freePort();
    const result = await start({ NATS_URL: `nats://127.0.0.1:${port}`, TALKHUB_NATS_STARTUP_TIMEOUT_MS: "2000" });
    const lines = refusedLines(result);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      new RegExp(
        `^Talkhub not started: NATS_URL: NATS at nats://127\\.0\\.0\\.1:${port} not reachable: \\d+ attempts in [\\d.]+ s \\(TALKHUB_NATS_STARTUP_TIMEOUT_MS=2000\\), the last: .+`,
      ),
    );
    const attempts = logLines(result.stdout).filter((line) => line.msg === "NATS not reachable yet; retrying");
    expect(attempts.length, result.stdout).toBeGreaterThanOrEqual(2);
    expect(attempts[0]).toMatchObject({ level: 40, servers: `nats://127.0.0.1:${port}`, attempt: 1 });
    expect(attempts.map((a) => a["attempt"])).toEqual(attempts.map((_, i) => i + 1));
  }, 240_000);

  it("gives up on a Postgres that never answers after TALKHUB_DB_STARTUP_TIMEOUT_MS, each attempt logged with the host and the error", async () => {
    const port = await freePort();
    const result = await start({
      DATABASE_URL: `postgres://talkhub:hidden@127.0.0.1:${port}/talkhub`,
      TALKHUB_JWT_SECRET: newSecret(),
      TALKHUB_DB_STARTUP_TIMEOUT_MS: "2000",
    });
    const lines = refusedLines(result);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      new RegExp(
        `^Talkhub not started: DATABASE_URL: Postgres at 127\\.0\\.0\\.1:${port}/talkhub not reachable: \\d+ attempts in [\\d.]+ s \\(TALKHUB_DB_STARTUP_TIMEOUT_MS=2000\\), the last: .*ECONNREFUSED`,
      ),
    );
    expect(result.stdout + result.stderr).not.toContain("hidden");
    const attempts = logLines(result.stdout).filter((line) => line.msg === "Postgres not reachable yet; retrying");
    expect(attempts.length, result.stdout).toBeGreaterThanOrEqual(2);
    expect(attempts[0]).toMatchObject({ level: 40, server: `127.0.0.1:${port}/talkhub`, attempt: 1 });
    expect(String(attempts[0]?.["error"])).toContain("ECONNREFUSED");
  }, 240_000);
});

const postgres = await dependenciesReachable("start-up retries (Postgres)", { postgres: true });

/**
 * A TCP proxy to the test Postgres that cuts every connection (as a server not up yet would)
 * until opened; `cut` counts those it cut.
 */
async function postgresProxy(target: URL): Promise<{ port: number; readonly cut: number; open(): void; close(): Promise<void> }> {
  let opened = false;
  let cut = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on("error", () => undefined);
    client.on("close", () => sockets.delete(client));
    if (!opened) {
      cut++;
      client.destroy();
      return;
    }
    const upstream = tcpConnect({ host: target.hostname, port: Number(target.port === "" ? "5432" : target.port) });
    sockets.add(upstream);
    upstream.on("error", () => undefined);
    upstream.on("close", () => sockets.delete(upstream));
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("the proxy has no port");
  return {
    port: address.port,
    get cut() {
      return cut;
    },
    open: () => {
      opened = true;
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe.skipIf(!postgres)("a Postgres that comes up during the retries", () => {
  it("is used: the service starts once the database answers", async () => {
    const database = await createTestDatabase();
    const proxy = await postgresProxy(new URL(database.url));
    const url = new URL(database.url);
    url.host = `127.0.0.1:${proxy.port}`;
    let service: TalkhubProcess | undefined;
    try {
      const starting = spawnTalkhub(
        { DATABASE_URL: url.toString(), TALKHUB_JWT_SECRET: newSecret(), TALKHUB_DB_STARTUP_TIMEOUT_MS: "120000" },
        240_000,
      );
      // Two attempts cut, then the proxy lets the next through to the real server.
      await waitFor("two connection attempts", () => proxy.cut >= 2, 180_000);
      proxy.open();
      service = await starting;
      const attempts = logLines(service.stdout()).filter((line) => line.msg === "Postgres not reachable yet; retrying");
      expect(attempts.length, service.stdout()).toBeGreaterThanOrEqual(2);
      expect(attempts[0]).toMatchObject({ server: `127.0.0.1:${proxy.port}/${database.name}`, attempt: 1 });
      expect(String(attempts[0]?.["error"])).toMatch(/ECONNRESET|Connection terminated/i);
      expect((await fetch(`${service.url}/readyz`, { signal: AbortSignal.timeout(10_000) })).status).toBe(200);
    } finally {
      await service?.stop();
      await proxy.close();
      await database.drop();
    }
  }, 300_000);
});

const natsBinary = await dependenciesReachable("NATS connection logs", { natsServerBinary: true });

describe.skipIf(!natsBinary)("a running service", () => {
  it("logs NATS disconnects and reconnects, says at debug level why a token was refused, and serves standard process metrics", async () => {
    const nats = await startNats();
    let service: TalkhubProcess | undefined;
    try {
      service = await spawnTalkhub({ NATS_URL: nats.url, TALKHUB_LOG_LEVEL: "debug" }, 240_000);
      const running = service;
      const logged = (msg: string) => logLines(running.stdout()).filter((line) => line.msg === msg);

      await nats.stop();
      await waitFor("a NATS disconnected line", () => logged("NATS disconnected; reconnecting").length > 0, 30_000);
      expect(logged("NATS disconnected; reconnecting")[0]).toMatchObject({ level: 40, server: `127.0.0.1:${nats.port}` });
      await nats.restart();
      await waitFor("a NATS reconnected line", () => logged("NATS reconnected").length > 0, 30_000);
      expect(logged("NATS reconnected")[0]).toMatchObject({ level: 30, server: `127.0.0.1:${nats.port}` });

      // A token signed with another secret is refused; the debug line says which check failed.
      const stranger = await mintToken(newSecret(), { customerId: crypto.randomUUID(), agentId: crypto.randomUUID(), name: "stranger" });
      const clients = clientsFor(running.url, stranger);
      try {
        await expect(clients.talks.listTalks({})).rejects.toThrow(/the token is not valid/);
      } finally {
        clients.close();
      }
      await waitFor("a token refused line", () => logged("token refused").length > 0, 10_000);
      expect(logged("token refused")[0]).toMatchObject({
        level: 20,
        method: "talk.v1.TalkService/ListTalks",
        reason: "the token is not valid",
        check: "ERR_JWS_SIGNATURE_VERIFICATION_FAILED",
      });
      // A WebSocket upgrade with that token is refused with 401, and logged the same way.
      const upgradeStatus = await new Promise<number>((resolve) => {
        const socket = new WebSocket(`${running.url.replace(/^http/, "ws")}/v1.0/ws?token=${encodeURIComponent(stranger)}`);
        socket.once("unexpected-response", (_request, response) => {
          resolve(response.statusCode ?? 0);
          socket.terminate();
        });
        socket.once("open", () => {
          resolve(101);
          socket.terminate();
        });
        socket.once("error", () => resolve(-1));
      });
      expect(upgradeStatus).toBe(401);
      await waitFor(
        "a token refused line for the WebSocket",
        () => logged("token refused").some((line) => line.method === "websocket upgrade"),
        10_000,
      );
      expect(logged("token refused").find((line) => line.method === "websocket upgrade")).toMatchObject({
        level: 20,
        reason: "the token is not valid",
        check: "ERR_JWS_SIGNATURE_VERIFICATION_FAILED",
      });
      expect(running.stdout()).not.toContain(stranger);

      const operatorPort = /on 127\.0\.0\.1:(\d+)/.exec(running.stdout())?.[1];
      const metrics = await (await fetch(`http://127.0.0.1:${operatorPort}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
      for (const name of [
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "nodejs_heap_size_used_bytes",
        "nodejs_eventloop_lag_seconds",
        "talkhub_rpc_requests_total",
      ]) {
        expect(metrics).toMatch(new RegExp(`^# TYPE ${name} `, "m"));
      }
      expect(metrics).not.toMatch(/^talkhub_(process|nodejs)_/m);
    } finally {
      await service?.stop();
      await nats.stop();
    }
  }, 240_000);
});
