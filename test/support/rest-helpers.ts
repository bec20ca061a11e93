/**
 * Helpers of the REST and operator suites: plain HTTP calls with fetch, services started with
 * their own HTTP settings, and a Prometheus text reader.
 */
import { spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import httpModule from "node:http";
import { fileURLToPath } from "node:url";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "vitest";
import { mintToken } from "../../src/auth/tokens.js";
import { defaultHttpConfig, defaultLiveConfig } from "../../src/config.js";
import type { Config, DatabaseConfig, HttpConfig } from "../../src/config.js";
import { startService } from "../../src/service.js";
import type { Service } from "../../src/service.js";

// JSON bodies of the REST answers are read loosely on purpose: the tests check the wire shape.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

export interface RestReply {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  /** The parsed body; undefined when it is not JSON. */
  readonly json: Json;
}

export interface RestOptions {
  /** Sent verbatim as the body. */
  readonly body?: string;
  readonly headers?: Record<string, string>;
  /** Adds `Authorization: Bearer <bearer>`. */
  readonly bearer?: string;
}

const jsonHeaders = { "Content-Type": "application/json" };

/** One HTTP/1.1 request to `baseUrl + pathAndQuery`, its whole answer read. */
export async function rest(baseUrl: string, method: string, pathAndQuery: string, options: RestOptions = {}): Promise<RestReply> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.bearer !== undefined) headers["Authorization"] = `Bearer ${options.bearer}`;
  const response = await fetch(`${baseUrl}${pathAndQuery}`, {
    method,
    headers,
    ...(options.body === undefined ? {} : { body: options.body }),
    signal: AbortSignal.timeout(20_000),
  });
  const text = await response.text();
  let json: Json;
  try {
    json = text === "" ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, text, json };
}

/** A JSON request as the spec's curl examples send it: ?token= in the query, JSON content type. */
export function curl(baseUrl: string, method: string, path: string, token: string, body?: string): Promise<RestReply> {
  const separator = path.includes("?") ? "&" : "?";
  return rest(baseUrl, method, `${path}${separator}token=${token}`, body === undefined ? {} : { body, headers: jsonHeaders });
}

/** A JSON request with the token in the Authorization header. */
export function call(baseUrl: string, method: string, path: string, token: string, body?: unknown): Promise<RestReply> {
  return rest(baseUrl, method, path, {
    bearer: token,
    ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body), headers: jsonHeaders }),
  });
}

/** Asserts a status (showing the body when it differs) and returns the JSON body. */
export function expectStatus(reply: RestReply, status: number): Json {
  expect(reply.status, `HTTP ${reply.status}: ${reply.text}`).toBe(status);
  return reply.json;
}

/** Asserts a REST error: the HTTP status, {"code","message"} and optionally a word of the message. */
export function expectRestError(reply: RestReply, status: number, code: string, mentions?: string): void {
  expect(reply.status, `HTTP ${reply.status}: ${reply.text}`).toBe(status);
  expect(reply.headers.get("content-type") ?? "").toContain("application/json");
  expect(reply.json).toMatchObject({ code, message: expect.any(String) });
  if (mentions !== undefined) expect(reply.json.message).toContain(mentions);
}

/** An RFC 3339 timestamp as proto JSON writes it. */
export function expectTimestamp(value: unknown): void {
  expect(typeof value, `timestamp ${String(value)}`).toBe("string");
  expect(Number.isNaN(Date.parse(value as string)), `timestamp ${String(value)}`).toBe(false);
}

/** A service started with its own HTTP settings (the harness has none), on PGlite by default. */
export interface CustomService {
  readonly service: Service;
  readonly secret: string;
  /** Mints a token for a new agent and enters it into the directory with one REST call. */
  agent(customerId: string, name: string, role?: "agent" | "admin"): Promise<{ id: string; token: string }>;
  stop(): Promise<void>;
}

export async function startCustomService(
  http: Partial<HttpConfig> = {},
  database: DatabaseConfig = { kind: "pglite", dataDir: null },
): Promise<CustomService> {
  const secret = randomBytes(32).toString("hex");
  const dataDir = await mkdtemp(join(tmpdir(), "talkhub-rest-"));
  const config: Config = {
    host: "127.0.0.1",
    port: 0,
    database,
    auth: { secret, jwksUrl: undefined, issuer: undefined, audience: undefined },
    natsUrl: undefined,
    dataDir,
    live: { ...defaultLiveConfig, natsPrefix: `t${randomBytes(8).toString("hex")}` },
    http: { ...defaultHttpConfig, ...http },
  };
  let service: Service;
  try {
    service = await startService(config);
  } catch (error) {
    await rm(dataDir, { recursive: true, force: true });
    throw error;
  }
  let stopped = false;
  return {
    service,
    secret,
    agent: async (customerId, name, role) => {
      const id = randomUUID();
      const token = await mintToken(secret, { customerId, agentId: id, name, role });
      expectStatus(await call(service.url, "GET", "/v1.0/talks", token), 200);
      return { id, token };
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await service.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Reads NDJSON lines from a streaming fetch body until `enough` says so or time runs out. */
export async function readLines(
  body: ReadableStream<Uint8Array>,
  enough: (lines: Json[]) => boolean,
  timeoutMs = 10_000,
): Promise<Json[]> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const lines: Json[] = [];
  let buffered = "";
  const deadline = Date.now() + timeoutMs;
  try {
    while (!enough(lines)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${lines.length} lines: ${JSON.stringify(lines).slice(0, 500)}`);
      let timer: NodeJS.Timeout | undefined;
      const chunk = await Promise.race([
        reader.read(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`timed out after ${lines.length} lines`)), left);
        }),
      ]).finally(() => clearTimeout(timer));
      if (chunk.done) break;
      buffered += decoder.decode(chunk.value, { stream: true });
      let newline = buffered.indexOf("\n");
      while (newline >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        if (line.trim() !== "") lines.push(JSON.parse(line));
        newline = buffered.indexOf("\n");
      }
    }
  } finally {
    reader.releaseLock();
  }
  return lines;
}

/**
 * The value of a Prometheus sample: the sum over the series of `name` whose labels include
 * `labels` (0 when there is none).
 */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (match === null || match[1] !== name) continue;
    const found = new Map<string, string>();
    for (const pair of (match[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      found.set(pair[1] ?? "", pair[2] ?? "");
    }
    if (Object.entries(labels).every(([key, value]) => found.get(key) === value)) sum += Number(match[3]);
  }
  return sum;
}

/** Polls `check` until it returns true, at most `timeoutMs`; throws with `what` otherwise. */
export async function eventually(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 10_000, everyMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** A request over node:http with a given agent (e.g. one keep-alive socket), its whole answer read. */
export function httpRequest(
  agent: import("node:http").Agent,
  baseUrl: string,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string,
  timeoutMs = 5_000,
): Promise<{ status: number; headers: import("node:http").IncomingHttpHeaders; text: string }> {
  return new Promise((resolve, reject) => {
    const request = httpModule.request(`${baseUrl}${path}`, { method, agent, headers }, (response) => {
      let text = "";
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => {
        text += chunk;
      });
      response.on("end", () => {
        clearTimeout(timer);
        resolve({ status: response.statusCode ?? 0, headers: response.headers, text });
      });
      response.on("error", reject);
    });
    const timer = setTimeout(() => {
      request.destroy(new Error(`${method} ${path}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    request.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    request.end(body);
  });
}

/** A service in a child process (`node --import tsx src/main.ts`), with its output collected. */
export interface ServiceProcess {
  readonly port: number;
  readonly url: string;
  /** Everything written to stdout and stderr so far. */
  output(): string;
  /** Whether the process is still running. */
  alive(): boolean;
  /** SIGTERM, then SIGKILL after 10 s; resolves when it has exited. */
  stop(): Promise<void>;
}

export async function spawnService(extraEnv: Record<string, string>): Promise<ServiceProcess> {
  const dataDir = await mkdtemp(join(tmpdir(), "talkhub-proc-"));
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith("TALKHUB_") && key !== "DATABASE_URL" && key !== "NATS_URL") env[key] = value;
  }
  Object.assign(env, { TALKHUB_HOST: "127.0.0.1", TALKHUB_PORT: "0", TALKHUB_OPERATOR_PORT: "0", TALKHUB_DATA_DIR: dataDir, ...extraEnv });
  const root = fileURLToPath(new URL("../..", import.meta.url));
  const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts"], { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let exited = false;
  const exit = new Promise<void>((resolve) => {
    child.once("exit", () => {
      exited = true;
      resolve();
    });
  });
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    out += chunk;
  });
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    out += chunk;
  });
  const stop = async (): Promise<void> => {
    if (!exited) {
      child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exit;
      clearTimeout(killer);
    }
    await rm(dataDir, { recursive: true, force: true });
  };
  let port = 0;
  try {
    await eventually(
      "the service to print its port",
      () => {
        if (exited) throw new Error(`the service exited: ${out}`);
        const match = /Talkhub listening on :(\d+)/.exec(out);
        if (match !== null) port = Number(match[1]);
        return port !== 0;
      },
      // tsx compiles the service and the embedded database is created on disk: slow on a busy machine.
      90_000,
      250,
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return { port, url: `http://127.0.0.1:${port}`, output: () => out, alive: () => !exited, stop };
}
