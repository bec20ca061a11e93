/**
 * Helpers of the REST and operator suites: plain HTTP calls with fetch, NDJSON and Prometheus
 * text readers. Services come from the harness (useService) or processes.ts (spawnTalkhub).
 */
import httpModule from "node:http";
import { expect } from "vitest";

// biome-ignore lint/suspicious/noExplicitAny: JSON bodies of the REST answers are read loosely on purpose: the tests check the wire shape.
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

/** The spec's timestamp form, written on the /v1.0 paths: UTC, a space, six fraction digits. */
export const SPEC_TIME_RE = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}$/;

/** A timestamp as the /v1.0 REST paths write it ("2024-01-17 10:30:00.000000"). */
export function expectTimestamp(value: unknown): void {
  expect(value, `timestamp ${String(value)}`).toMatch(SPEC_TIME_RE);
}

/** A /v1.0 timestamp as epoch milliseconds (it is UTC; Date.parse would read it as local time). */
export function specTimeMs(value: string): number {
  return Date.parse(`${value.replace(" ", "T")}Z`);
}

/** Reads NDJSON lines from a streaming fetch body until `enough` says so or time runs out. */
export async function readLines(body: ReadableStream<Uint8Array>, enough: (lines: Json[]) => boolean, timeoutMs = 10_000): Promise<Json[]> {
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
