/**
 * The operator surface: gRPC reflection (buf curl with no proto files, descriptors with their
 * comments), gRPC health, /healthz and /readyz (also against a private Postgres that goes down
 * and comes back), Prometheus /metrics, CORS and the JSON request logs.
 */
import { execFile, execFileSync } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Health, HealthCheckResponse_ServingStatus as Serving } from "../../gen/grpc/health/v1/health_pb.js";
import { ServerReflection as ReflectionV1 } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ReflectionV1alpha } from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { mintToken } from "../../src/auth/tokens.js";
import { ConfigError, readConfig } from "../../src/config.js";
import { backends, createTalk, must, newCustomer, sendText, TestEnv, useService } from "../support/harness.js";
import { spawnTalkhub, type TalkhubProcess } from "../support/processes.js";
import { call, expectRestError, expectStatus, metricValue, rest } from "../support/rest-helpers.js";
import type { Json } from "../support/rest-helpers.js";

const run = promisify(execFile);
const root = fileURLToPath(new URL("../..", import.meta.url));
const buf = join(root, "node_modules", ".bin", "buf");

async function bufCurl(args: string[]): Promise<{ stdout: string; stderr: string }> {
  try {
    return await run(buf, ["curl", ...args], { cwd: root, timeout: 60_000, env: { ...process.env, BUF_LOG_FORMAT: "text" } });
  } catch (error) {
    const failed = error as { stdout?: string; stderr?: string; message?: string };
    throw new Error(`buf curl ${args.join(" ")} failed: ${failed.message ?? ""}\n${failed.stdout ?? ""}\n${failed.stderr ?? ""}`);
  }
}

/** The file descriptors one reflection request returns (v1 or v1alpha: one wire format). */
async function reflectFiles(baseUrl: string, version: "v1" | "v1alpha", symbol: string): Promise<FileDescriptorProto[]> {
  const transport = createGrpcTransport({ baseUrl });
  const request = { messageRequest: { case: "fileContainingSymbol" as const, value: symbol } };
  async function* requests() {
    yield request;
  }
  const responses =
    version === "v1"
      ? createClient(ReflectionV1, transport).serverReflectionInfo(requests(), { timeoutMs: 10_000 })
      : createClient(ReflectionV1alpha, transport).serverReflectionInfo(requests(), { timeoutMs: 10_000 });
  const files: FileDescriptorProto[] = [];
  for await (const response of responses) {
    const answer = response.messageResponse;
    if (answer.case !== "fileDescriptorResponse") throw new Error(`unexpected reflection answer ${String(answer.case)}`);
    for (const bytes of answer.value.fileDescriptorProto) files.push(fromBinary(FileDescriptorProtoSchema, bytes));
  }
  return files;
}

function commentsOf(file: FileDescriptorProto): string[] {
  return (file.sourceCodeInfo?.location ?? []).map((l) => l.leadingComments).filter((c) => c !== "");
}

/** /metrics of a service, read where it lives: on the operator listener. */
async function metrics(service: { operatorUrl: string | undefined }): Promise<string> {
  const reply = await rest(must(service.operatorUrl, "operator listener"), "GET", "/metrics");
  expect(reply.status).toBe(200);
  expect(reply.headers.get("content-type") ?? "").toContain("text/plain");
  return reply.text;
}

describe.each(backends)("operator surface on %s", (backend) => {
  const env = useService(backend);
  const url = (): string => env.service.url;

  describe("gRPC reflection", () => {
    it.each([
      ["negotiated", []],
      ["grpc-v1", ["--reflect-protocol", "grpc-v1"]],
      ["grpc-v1alpha", ["--reflect-protocol", "grpc-v1alpha"]],
    ] as const)(
      "buf curl lists the services through reflection (%s)",
      async (_, flags) => {
        const { stdout } = await bufCurl(["--protocol", "grpc", "--http2-prior-knowledge", ...flags, "--list-services", url()]);
        const services = stdout
          .split("\n")
          .map((line) => line.trim())
          .filter((line) => line !== "");
        for (const name of [
          "talk.v1.TalkService",
          "talk.v1.MessageService",
          "talk.v1.AgentService",
          "grpc.health.v1.Health",
          "grpc.reflection.v1.ServerReflection",
          "grpc.reflection.v1alpha.ServerReflection",
        ]) {
          expect(services).toContain(name);
        }
      },
      90_000,
    );

    it("buf curl lists the methods and calls SendMessage with no proto files", async () => {
      const { stdout: methods } = await bufCurl(["--protocol", "grpc", "--http2-prior-knowledge", "--list-methods", url()]);
      expect(methods).toContain("talk.v1.MessageService/SendMessage");
      expect(methods).toContain("talk.v1.TalkService/WatchTalk");

      const customer = newCustomer();
      const [a, b] = [await env.agent(customer, "Ann"), await env.agent(customer, "Bob")];
      const talk = await createTalk(a, [b]);
      const text = `sent by buf curl ${randomUUID()}`;
      const { stdout } = await bufCurl([
        "--protocol",
        "grpc",
        "--http2-prior-knowledge",
        "-H",
        `Authorization: Bearer ${a.token}`,
        "-d",
        JSON.stringify({ chat_id: talk.id, text }),
        `${url()}/talk.v1.MessageService/SendMessage`,
      ]);
      const sent = JSON.parse(stdout) as Json;
      expect(sent.message.text).toBe(text);
      expect(sent.message.chatId ?? sent.message.chat_id).toBe(talk.id);
      const { result } = await b.messages.listMessages({ chatId: talk.id });
      expect(result.map((m) => m.text)).toContain(text);

      // Without a token the call is refused with UNAUTHENTICATED (buf curl exits with code << 3).
      await expect(
        bufCurl([
          "--protocol",
          "grpc",
          "--http2-prior-knowledge",
          "-d",
          JSON.stringify({ chat_id: talk.id, text }),
          `${url()}/talk.v1.MessageService/SendMessage`,
        ]),
      ).rejects.toThrow(/unauthenticated/i);
    }, 90_000);

    it.each(["v1", "v1alpha"] as const)("reflection %s serves descriptors with their comments", async (version) => {
      const files = await reflectFiles(url(), version, "talk.v1.MessageService");
      const names = files.map((f) => f.name);
      expect(names).toContain("talk/v1/message_service.proto");
      // The imports come along so that a client can build the schema.
      expect(names).toContain("talk/v1/resources.proto");
      expect(names).toContain("google/api/annotations.proto");
      const service = must(files.find((f) => f.name === "talk/v1/message_service.proto"));
      expect(service.service.map((s) => s.name)).toEqual(["MessageService"]);
      expect(commentsOf(service).some((c) => c.includes("Sends a message to an active talk"))).toBe(true);
      const resources = must(files.find((f) => f.name === "talk/v1/resources.proto"));
      expect(commentsOf(resources).some((c) => c.includes("A talk: a conversation between agents"))).toBe(true);

      const bySymbol = await reflectFiles(url(), version, "talk.v1.Talk");
      expect(bySymbol.map((f) => f.name)).toContain("talk/v1/resources.proto");
    });
  });

  describe("health", () => {
    it("Check answers SERVING without a token, for the server and each service", async () => {
      const health = createClient(Health, createGrpcTransport({ baseUrl: url() }));
      expect((await health.check({ service: "" })).status).toBe(Serving.SERVING);
      expect((await health.check({ service: "talk.v1.MessageService" })).status).toBe(Serving.SERVING);
      let error: ConnectError | undefined;
      try {
        await health.check({ service: "no.such.Service" });
      } catch (reason) {
        error = ConnectError.from(reason);
      }
      expect(error?.code).toBe(Code.NotFound);
    });

    it("Watch sends SERVING", async () => {
      const health = createClient(Health, createGrpcTransport({ baseUrl: url() }));
      const abort = new AbortController();
      const timer = setTimeout(() => abort.abort(), 10_000);
      const statuses: Serving[] = [];
      try {
        for await (const response of health.watch({ service: "" }, { signal: abort.signal })) {
          statuses.push(response.status);
          break;
        }
      } finally {
        clearTimeout(timer);
        abort.abort();
      }
      // A Watch that ends (or is cut off) without a message must not pass.
      expect(statuses).toEqual([Serving.SERVING]);
    });

    it("/healthz answers 200 and /readyz 200 with the checks, on the public port and on the operator listener", async () => {
      for (const base of [url(), must(env.service.operatorUrl, "operator listener")]) {
        const healthz = await rest(base, "GET", "/healthz");
        expect(healthz.status).toBe(200);
        const readyz = await rest(base, "GET", "/readyz");
        expect(readyz.status).toBe(200);
        expect(readyz.json).toMatchObject({ ready: true, database: "ok", bus: "ok" });
      }
    });

    it("serves /metrics on the operator listener only: the public port answers 404", async () => {
      const operatorUrl = must(env.service.operatorUrl, "operator listener");
      expect(new URL(operatorUrl).port).not.toBe(new URL(url()).port);
      const scraped = await rest(operatorUrl, "GET", "/metrics");
      expect(scraped.status).toBe(200);
      expect(scraped.text).toContain("# TYPE talkhub_rpc_requests_total ");
      for (const path of ["/metrics", "/metrics?format=text", "/metrics/"]) {
        const reply = await rest(url(), "GET", path);
        expect(reply.status, path).toBe(404);
        expect(reply.text).not.toContain("talkhub_");
      }
      // The operator listener serves nothing else: no API, no console.
      expect((await rest(operatorUrl, "GET", "/v1.0/talks")).status).toBe(404);
      expect(
        (await rest(operatorUrl, "POST", "/talk.v1.TalkService/ListTalks", { headers: { "Content-Type": "application/json" }, body: "{}" }))
          .status,
      ).toBe(404);
      // And the public port still answers.
      expect((await rest(url(), "GET", "/healthz")).status).toBe(200);
    });
  });

  describe("metrics", () => {
    it("counts RPCs by method and code, and their durations", async () => {
      const customer = newCustomer();
      const a = await env.agent(customer, "Ann");
      const before = await metrics(env.service);
      const ok = { method: "talk.v1.TalkService/ListTalks", code: "ok" };
      const missing = { method: "talk.v1.TalkService/GetTalk", code: "not_found" };
      for (let i = 0; i < 3; i++) await a.talks.listTalks({});
      expectRestError(await call(url(), "GET", `/v1.0/talks/${randomUUID()}`, a.token), 404, "not_found");
      const after = await metrics(env.service);
      expect(metricValue(after, "talkhub_rpc_requests_total", ok) - metricValue(before, "talkhub_rpc_requests_total", ok)).toBe(3);
      expect(metricValue(after, "talkhub_rpc_requests_total", missing) - metricValue(before, "talkhub_rpc_requests_total", missing)).toBe(
        1,
      );
      const count = { method: "talk.v1.TalkService/ListTalks" };
      expect(metricValue(after, "talkhub_rpc_duration_seconds_count", count)).toBeGreaterThanOrEqual(
        metricValue(before, "talkhub_rpc_duration_seconds_count", count) + 3,
      );
      for (const name of [
        "talkhub_rpc_duration_seconds",
        "talkhub_streams_open",
        "talkhub_events_published_total",
        "talkhub_events_delivered_total",
        "talkhub_event_delivery_lag_seconds",
        "talkhub_db_pool_connections",
      ]) {
        expect(after).toContain(`# TYPE ${name} `);
      }
      if (backend === "postgres") expect(metricValue(after, "talkhub_db_pool_connections", { state: "total" })).toBeGreaterThan(0);
    });

    it("counts published events, delivered events and open streams", async () => {
      const customer = newCustomer();
      const [a, b] = [await env.agent(customer, "Ann"), await env.agent(customer, "Bob")];
      const talk = await createTalk(a, [b]);
      const before = await metrics(env.service);
      await sendText(a, talk.id, "counted");
      const afterSend = await metrics(env.service);
      // The message, at least (a send is one event).
      expect(
        metricValue(afterSend, "talkhub_events_published_total") - metricValue(before, "talkhub_events_published_total"),
      ).toBeGreaterThanOrEqual(1);

      const head = must((await a.talks.getTalk({ id: talk.id })).talk);
      const wanted = Number(head.lastSeq);
      const watchOpen = { method: "talk.v1.TalkService/WatchTalk" };
      const abort = new AbortController();
      const timer = setTimeout(() => abort.abort(), 15_000);
      let received = 0;
      try {
        for await (const response of b.talks.watchTalk({ chatId: talk.id, afterSeq: 0n }, { signal: abort.signal })) {
          if (response.kind.case === "event") received += 1;
          if (received >= wanted) break;
        }
        expect(received).toBe(wanted);
      } finally {
        clearTimeout(timer);
        abort.abort();
      }
      const afterWatch = await metrics(env.service);
      expect(
        metricValue(afterWatch, "talkhub_events_delivered_total") - metricValue(afterSend, "talkhub_events_delivered_total"),
      ).toBeGreaterThanOrEqual(wanted);
      expect(metricValue(afterWatch, "talkhub_event_delivery_lag_seconds_count")).toBeGreaterThanOrEqual(wanted);

      // An open stream shows in talkhub_streams_open until it ends. The first one is counted
      // out once the server has seen it end.
      const base = metricValue(before, "talkhub_streams_open", watchOpen);
      await expect
        .poll(async () => metricValue(await metrics(env.service), "talkhub_streams_open", watchOpen) <= base, {
          timeout: 10_000,
          interval: 100,
          message: "the first stream to be uncounted",
        })
        .toBe(true);
      const watching = new AbortController();
      // One event pending, so that the stream has started sending when it is counted.
      const stream = b.talks.watchTalk({ chatId: talk.id, afterSeq: head.lastSeq - 1n }, { signal: watching.signal });
      const pump = (async () => {
        try {
          for await (const _ of stream) void _;
        } catch {
          // aborted
        }
      })();
      try {
        await expect
          .poll(async () => metricValue(await metrics(env.service), "talkhub_streams_open", watchOpen) >= base + 1, {
            timeout: 10_000,
            interval: 100,
            message: "the open stream to be counted",
          })
          .toBe(true);
      } finally {
        watching.abort();
        await pump;
      }
      await expect
        .poll(async () => metricValue(await metrics(env.service), "talkhub_streams_open", watchOpen) <= base, {
          timeout: 10_000,
          interval: 100,
          message: "the closed stream to be uncounted",
        })
        .toBe(true);
    });

    it("counts a watcher that hangs up as canceled, not internal (REST NDJSON and Connect streams)", async () => {
      const customer = newCustomer();
      const [a, b] = [await env.agent(customer, "Ann"), await env.agent(customer, "Bob")];
      const talk = await createTalk(a, [b]);
      const canceled = { method: "talk.v1.TalkService/WatchTalk", code: "canceled" };
      const internal = { method: "talk.v1.TalkService/WatchTalk", code: "internal" };
      const before = await metrics(env.service);

      const restAbort = new AbortController();
      const response = await fetch(`${url()}/v1.0/talks/${talk.id}/events?after_seq=0&token=${b.token}`, { signal: restAbort.signal });
      expect(response.status).toBe(200);
      const reader = must(response.body ?? undefined, "body").getReader();
      expect((await reader.read()).done).toBe(false);
      restAbort.abort();

      const connectAbort = new AbortController();
      const viaConnect = env.clients(b.token, "connect");
      try {
        for await (const message of viaConnect.talks.watchTalk({ chatId: talk.id, afterSeq: 0n }, { signal: connectAbort.signal })) {
          // The stream opens with a heartbeat, then replays the events.
          expect(["heartbeat", "event"]).toContain(message.kind.case);
          connectAbort.abort();
        }
      } catch (error) {
        expect(ConnectError.from(error).code).toBe(Code.Canceled);
      }

      await expect
        .poll(
          async () => {
            const now = await metrics(env.service);
            return (
              metricValue(now, "talkhub_rpc_requests_total", canceled) + metricValue(now, "talkhub_rpc_requests_total", internal) >=
              metricValue(before, "talkhub_rpc_requests_total", canceled) + metricValue(before, "talkhub_rpc_requests_total", internal) + 2
            );
          },
          { timeout: 10_000, interval: 100, message: "both hang-ups to be counted" },
        )
        .toBe(true);
      const after = await metrics(env.service);
      expect(metricValue(after, "talkhub_rpc_requests_total", internal) - metricValue(before, "talkhub_rpc_requests_total", internal)).toBe(
        0,
      );
      expect(metricValue(after, "talkhub_rpc_requests_total", canceled) - metricValue(before, "talkhub_rpc_requests_total", canceled)).toBe(
        2,
      );
    });
  });
});

describe.each(backends)("CORS on %s", (backend) => {
  const any = useService(backend, { http: { corsOrigins: ["*"] } });
  const restricted = useService(backend, { http: { corsOrigins: ["https://console.example"] } });

  const preflight = (baseUrl: string, origin: string, path = "/talk.v1.TalkService/ListTalks") =>
    rest(baseUrl, "OPTIONS", path, {
      headers: { Origin: origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type, authorization" },
    });

  it("answers a preflight with 204 and the allow headers", async () => {
    const reply = await preflight(any.service.url, "https://anywhere.example");
    expect(reply.status).toBe(204);
    expect(reply.headers.get("access-control-allow-origin")).toBe("*");
    expect(reply.headers.get("access-control-allow-methods") ?? "").toContain("POST");
    expect((reply.headers.get("access-control-allow-headers") ?? "").toLowerCase()).toContain("authorization");
    const restPreflight = await preflight(any.service.url, "https://anywhere.example", "/v1.0/talks");
    expect(restPreflight.status).toBe(204);
    expect(restPreflight.headers.get("access-control-allow-origin")).toBe("*");
  });

  it("adds allow-origin to the actual request and exposes x-request-id", async () => {
    const a = await any.agent(newCustomer(), "Ann");
    const reply = await rest(any.service.url, "GET", "/v1.0/talks", { bearer: a.token, headers: { Origin: "https://anywhere.example" } });
    expect(reply.status).toBe(200);
    expect(reply.headers.get("access-control-allow-origin")).toBe("*");
    expect((reply.headers.get("access-control-expose-headers") ?? "").toLowerCase()).toContain("x-request-id");
  });

  it("allows only the configured origins", async () => {
    const allowed = await preflight(restricted.service.url, "https://console.example");
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get("access-control-allow-origin")).toBe("https://console.example");
    expect(allowed.headers.get("vary") ?? "").toContain("Origin");

    const refused = await preflight(restricted.service.url, "https://evil.example");
    expect(refused.status).not.toBe(204);
    expect(refused.headers.get("access-control-allow-origin")).toBeNull();

    const a = await restricted.agent(newCustomer(), "Ann");
    const actual = await rest(restricted.service.url, "GET", "/v1.0/talks", {
      bearer: a.token,
      headers: { Origin: "https://evil.example" },
    });
    expect(actual.status).toBe(200);
    expect(actual.headers.get("access-control-allow-origin")).toBeNull();
    const fromConsole = await rest(restricted.service.url, "GET", "/v1.0/talks", {
      bearer: a.token,
      headers: { Origin: "https://console.example" },
    });
    expect(fromConsole.headers.get("access-control-allow-origin")).toBe("https://console.example");
  });
});

/** A Postgres of this suite's own (never the shared one), that the test stops and starts. */
class PrivatePostgres {
  readonly dir = mkdtempSync(join(tmpdir(), "talkhub-pg-"));
  readonly data = join(this.dir, "data");
  port = 0;
  private readonly bin: string;
  private readonly asPostgres = process.getuid?.() === 0;

  constructor() {
    const versions = readdirSync("/usr/lib/postgresql").filter((v) => existsSync(join("/usr/lib/postgresql", v, "bin", "pg_ctl")));
    const newest = versions.sort((x, y) => Number(y) - Number(x))[0];
    if (newest === undefined) throw new Error("no Postgres binaries under /usr/lib/postgresql");
    this.bin = join("/usr/lib/postgresql", newest, "bin");
    if (this.asPostgres) {
      // initdb refuses to run as root: the postgres OS user owns the cluster.
      const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim());
      const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim());
      chownSync(this.dir, uid, gid);
    }
  }

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  private async pg(tool: string, args: string[]): Promise<string> {
    const [file, fullArgs] = this.asPostgres
      ? ["runuser", ["-u", "postgres", "--", join(this.bin, tool), ...args]]
      : [join(this.bin, tool), args];
    try {
      const { stdout } = await run(file, fullArgs, { timeout: 60_000 });
      return stdout;
    } catch (error) {
      const failed = error as { stdout?: string; stderr?: string; message?: string };
      throw new Error(`${tool} failed: ${failed.message ?? ""}\n${failed.stdout ?? ""}\n${failed.stderr ?? ""}`);
    }
  }

  async init(): Promise<void> {
    this.port = await freePort();
    await this.pg("initdb", ["-D", this.data, "-U", "postgres", "--auth=trust", "--no-sync"]);
    await this.start();
  }

  async start(): Promise<void> {
    await this.pg("pg_ctl", [
      "-D",
      this.data,
      "-o",
      `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1`,
      "-l",
      join(this.dir, "log"),
      "-w",
      "-t",
      "30",
      "start",
    ]);
  }

  async stop(): Promise<void> {
    await this.pg("pg_ctl", ["-D", this.data, "-m", "immediate", "-w", "-t", "30", "stop"]);
  }

  async destroy(): Promise<void> {
    if (existsSync(join(this.data, "postmaster.pid"))) await this.stop().catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

describe("readiness against a private Postgres", () => {
  let postgres: PrivatePostgres | undefined;
  let custom: TestEnv | undefined;
  beforeAll(async () => {
    postgres = new PrivatePostgres();
    await postgres.init();
    custom = new TestEnv("postgres", { database: { kind: "postgres", url: postgres.url, poolSize: 4 } });
    await custom.start();
  }, 120_000);
  afterAll(async () => {
    // The database must be up for a clean close; the cluster goes either way.
    if (postgres !== undefined && !existsSync(join(postgres.data, "postmaster.pid"))) await postgres.start().catch(() => undefined);
    await custom?.stop();
    await postgres?.destroy();
  }, 120_000);

  it("turns /readyz 503 and health NOT_SERVING while the database is down, and back once it returns", async () => {
    const pgsql = must(postgres, "postgres");
    const service = must(custom, "service");
    const base = service.service.url;
    const health = createClient(Health, createGrpcTransport({ baseUrl: base }));
    const a = await service.agent(newCustomer(), "Ann");

    expect(expectStatus(await rest(base, "GET", "/readyz"), 200)).toMatchObject({ ready: true, database: "ok" });
    expect((await health.check({})).status).toBe(Serving.SERVING);

    // A Watch opened while serving reports the change.
    const abort = new AbortController();
    const seen: Serving[] = [];
    const watching = (async () => {
      try {
        for await (const response of health.watch({ service: "" }, { signal: abort.signal })) seen.push(response.status);
      } catch {
        // aborted
      }
    })();
    try {
      await expect.poll(() => seen.length > 0, { timeout: 10_000, interval: 100, message: "the first Watch answer" }).toBe(true);
      expect(seen[0]).toBe(Serving.SERVING);

      await pgsql.stop();
      const down = await rest(base, "GET", "/readyz");
      expect(down.status).toBe(503);
      expect(down.json).toMatchObject({ ready: false, database: "unreachable" });
      expect((await health.check({})).status).toBe(Serving.NOT_SERVING);
      await expect
        .poll(() => seen.includes(Serving.NOT_SERVING), { timeout: 15_000, interval: 100, message: "Watch to send NOT_SERVING" })
        .toBe(true);
      // /healthz is liveness only: still 200.
      expect((await rest(base, "GET", "/healthz")).status).toBe(200);
      // Calls fail with an error status, not a hang.
      const failing = await call(base, "GET", "/v1.0/talks", a.token);
      expect(failing.status).toBeGreaterThanOrEqual(500);

      await pgsql.start();
      await expect
        .poll(async () => (await rest(base, "GET", "/readyz")).status === 200, {
          timeout: 30_000,
          interval: 250,
          message: "/readyz to be 200 again",
        })
        .toBe(true);
      expect((await health.check({})).status).toBe(Serving.SERVING);
      await expect
        .poll(() => seen.lastIndexOf(Serving.SERVING) > seen.indexOf(Serving.NOT_SERVING), {
          timeout: 15_000,
          interval: 100,
          message: "Watch to send SERVING again",
        })
        .toBe(true);
      expectStatus(await call(base, "GET", "/v1.0/talks", a.token), 200);
    } finally {
      abort.abort();
      await watching;
    }
  }, 120_000);
});

describe("JSON request logs", () => {
  const secret = randomBytes(32).toString("hex");
  let proc: TalkhubProcess | undefined;
  beforeAll(async () => {
    // tsx compiles the service and the embedded database is created on disk: slow on a busy machine.
    proc = await spawnTalkhub({ TALKHUB_JWT_SECRET: secret, TALKHUB_LOG_LEVEL: "info" }, 90_000);
  }, 120_000);
  afterAll(() => proc?.stop(), 30_000);

  function logLines(output: string): Json[] {
    return output
      .split("\n")
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as Json);
  }

  it("prints its operator listener, which answers /metrics; the public port does not", async () => {
    const service = must(proc, "service process");
    const port = /operator endpoints .*? on 127\.0\.0\.1:(\d+),/.exec(service.output())?.[1];
    expect(port).toMatch(/^\d+$/);
    expect(Number(port)).not.toBe(service.port);
    const scraped = await rest(`http://127.0.0.1:${port}`, "GET", "/metrics");
    expect(scraped.status).toBe(200);
    expect(scraped.text).toContain("talkhub_");
    expect((await rest(service.url, "GET", "/metrics")).status).toBe(404);
    expect((await rest(service.url, "GET", "/healthz")).status).toBe(200);
  });

  it("echoes x-request-id on REST answers as on Connect ones", async () => {
    const service = must(proc, "service process");
    const token = await mintToken(secret, { customerId: randomUUID(), agentId: randomUUID(), name: "Ann" });
    const id = `rest-echo-${randomUUID()}`;
    const reply = await rest(service.url, "GET", "/v1.0/talks", { bearer: token, headers: { "X-Request-Id": id } });
    expect(reply.status).toBe(200);
    expect(reply.headers.get("x-request-id")).toBe(id);
  });

  it("writes one JSON line per request with method, code, duration and request id; never the token or the text", async () => {
    const service = must(proc, "service process");
    const customer = randomUUID();
    const agentId = randomUUID();
    const token = await mintToken(secret, { customerId: customer, agentId, name: "Ann" });
    const text = `confidential text ${randomUUID()}`;
    const connectText = `confidential connect text ${randomUUID()}`;
    const restId = `rest-${randomUUID()}`;
    const connectId = `connect-${randomUUID()}`;

    const talk = expectStatus(await call(service.url, "POST", "/v1.0/talks", token, { name: "logged" }), 200);
    const sent = await rest(service.url, "POST", `/v1.0/talks/${talk.id}/messages`, {
      bearer: token,
      headers: { "Content-Type": "application/json", "X-Request-Id": restId },
      body: JSON.stringify({ text }),
    });
    expectStatus(sent, 200);
    const viaConnect = await rest(service.url, "POST", "/talk.v1.MessageService/SendMessage", {
      bearer: token,
      headers: { "Content-Type": "application/json", "X-Request-Id": connectId },
      body: JSON.stringify({ chat_id: talk.id, text: connectText }),
    });
    expectStatus(viaConnect, 200);
    expect(viaConnect.headers.get("x-request-id")).toBe(connectId);
    expectRestError(await call(service.url, "GET", `/v1.0/talks/${randomUUID()}?token=${token}`, token), 404, "not_found");

    await expect
      .poll(
        () => {
          const ids = logLines(service.output()).map((line) => line.request_id);
          return ids.includes(restId) && ids.includes(connectId) && logLines(service.output()).some((line) => line.code === "not_found");
        },
        { timeout: 10_000, interval: 100, message: "the log lines" },
      )
      .toBe(true);
    const lines = logLines(service.output());
    const rpcLines = lines.filter((line) => line.method !== undefined);
    for (const line of rpcLines) {
      expect(typeof line.method).toBe("string");
      expect(typeof line.code).toBe("string");
      expect(typeof line.duration_ms).toBe("number");
      expect(typeof line.request_id).toBe("string");
      expect(line.request_id).not.toBe("");
    }
    expect(rpcLines.filter((line) => line.request_id === restId)).toHaveLength(1);
    expect(rpcLines.find((line) => line.request_id === restId)).toMatchObject({ method: "talk.v1.MessageService/SendMessage", code: "ok" });
    expect(rpcLines.find((line) => line.request_id === connectId)).toMatchObject({
      method: "talk.v1.MessageService/SendMessage",
      code: "ok",
    });
    expect(rpcLines.find((line) => line.code === "not_found")).toMatchObject({ method: "talk.v1.TalkService/GetTalk" });
    // Requests without an id get one of their own.
    const created = rpcLines.find((line) => line.method === "talk.v1.TalkService/CreateTalk");
    // The output of the whole test file's process (the echo test ran first) is checked below.
    expect(created?.request_id).toMatch(/^[0-9a-f-]{36}$/);

    await service.stop();
    const output = service.output();
    expect(output).not.toContain(token);
    expect(output).not.toContain(token.split(".")[2] ?? token);
    expect(output).not.toContain(text);
    expect(output).not.toContain(connectText);
    expect(output).not.toContain(secret);
  }, 60_000);
});

describe("operator listener configuration", () => {
  it("is 127.0.0.1:9090 by default; TALKHUB_OPERATOR_PORT=off turns it off; bad values are refused", () => {
    expect(readConfig({}).operator).toEqual({ host: "127.0.0.1", port: 9090 });
    expect(readConfig({ TALKHUB_OPERATOR_PORT: "9191", TALKHUB_OPERATOR_HOST: "10.0.0.5" }).operator).toEqual({
      host: "10.0.0.5",
      port: 9191,
    });
    expect(readConfig({ TALKHUB_OPERATOR_PORT: "off" }).operator).toBeNull();
    for (const bad of ["70000", "-1", "metrics"]) {
      expect(() => readConfig({ TALKHUB_OPERATOR_PORT: bad }), bad).toThrow(ConfigError);
    }
  });
});
