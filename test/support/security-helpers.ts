/**
 * Helpers of the security suites (fuzz, auth attacks, authz matrix, abuse limits): services
 * started with their own auth, HTTP and abuse settings, typed clients, raw HTTP calls, row
 * counts of the written tables and a full snapshot of every table.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from "node:http";
import http2 from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { sql } from "kysely";
import { afterAll, beforeAll } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { Http2SessionManager } from "@connectrpc/connect-node";
import { AgentService } from "../../gen/talk/v1/agent_service_pb.js";
import { MessageService } from "../../gen/talk/v1/message_service_pb.js";
import { TalkService } from "../../gen/talk/v1/talk_service_pb.js";
import { mintToken } from "../../src/auth/tokens.js";
import { defaultHttpConfig, defaultLiveConfig, noAbuseLimits } from "../../src/config.js";
import type { AbuseLimits, AuthConfig, Config, DatabaseConfig, HttpConfig, LiveConfig } from "../../src/config.js";
import { startService } from "../../src/service.js";
import type { Service } from "../../src/service.js";
import { clientsOn, type Backend, type Clients, type Role, type Via } from "./harness.js";

export const apiServices = [TalkService, MessageService, AgentService] as const;

const postgresAdminUrl = process.env["TALKHUB_TEST_DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test";

export interface SecOptions {
  readonly backend?: Backend;
  readonly auth?: Partial<AuthConfig>;
  readonly http?: Partial<HttpConfig>;
  readonly live?: Partial<LiveConfig>;
  readonly abuse?: AbuseLimits;
}

export interface SecAgent extends Clients {
  readonly id: string;
  readonly customerId: string;
  readonly name: string;
  readonly token: string;
  readonly role: Role;
}

/** The tables a request may write; agents are left out (a valid token upserts its agent). */
export const writtenTables = ["talks", "participants", "messages", "reactions", "events"] as const;
export type RowCounts = Record<(typeof writtenTables)[number], number>;

/** A row as plain values: timestamps as ISO text, bigints as text, JSON and bytes as text. */
export type SnapshotRow = Readonly<Record<string, string | number | boolean | null>>;

/** One table's rows by primary key (the key's values as JSON; the whole row when it has none). */
export interface TableSnapshot {
  readonly key: readonly string[];
  readonly rows: ReadonlyMap<string, SnapshotRow>;
}

/** Every table of the service's schema, by name. */
export type Snapshot = ReadonlyMap<string, TableSnapshot>;

export interface TableChanges {
  readonly added: SnapshotRow[];
  readonly removed: SnapshotRow[];
  readonly changed: { readonly before: SnapshotRow; readonly after: SnapshotRow }[];
}

function plainValue(value: unknown): string | number | boolean | null {
  if (value === null || value === undefined) return null;
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array) return Buffer.from(value).toString("hex");
  if (typeof value === "bigint") return value.toString();
  if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") return value;
  return JSON.stringify(value);
}

/** The rows that were added, removed or changed per table; only tables with a change are listed. */
export function snapshotChanges(before: Snapshot, after: Snapshot): Map<string, TableChanges> {
  const changes = new Map<string, TableChanges>();
  for (const table of new Set([...before.keys(), ...after.keys()])) {
    const old = before.get(table)?.rows ?? new Map<string, SnapshotRow>();
    const now = after.get(table)?.rows ?? new Map<string, SnapshotRow>();
    const diff: TableChanges = { added: [], removed: [], changed: [] };
    for (const [key, row] of now) {
      const was = old.get(key);
      if (was === undefined) diff.added.push(row);
      else if (JSON.stringify(was) !== JSON.stringify(row)) diff.changed.push({ before: was, after: row });
    }
    for (const [key, row] of old) if (!now.has(key)) diff.removed.push(row);
    if (diff.added.length + diff.removed.length + diff.changed.length > 0) changes.set(table, diff);
  }
  return changes;
}

/** The changes in a few readable lines, for failure messages. */
export function describeChanges(changes: ReadonlyMap<string, TableChanges>): string {
  const lines: string[] = [];
  for (const [table, diff] of changes) {
    for (const row of diff.added) lines.push(`${table} +${JSON.stringify(row)}`);
    for (const row of diff.removed) lines.push(`${table} -${JSON.stringify(row)}`);
    for (const { before, after } of diff.changed) {
      const fields = Object.keys(after).filter((k) => after[k] !== before[k]);
      lines.push(`${table} ~${fields.map((k) => `${k}: ${JSON.stringify(before[k])} -> ${JSON.stringify(after[k])}`).join(", ")}`);
    }
  }
  return lines.join("; ").slice(0, 2_000);
}
/**
 * The tables of a full snapshot: the written ones and agents (a registered caller's upsert
 * writes nothing, so a changed agent row is a real write).
 */
export const snapshotTables = [...writtenTables, "agents"] as const;
/** Every row of each snapshot table as Postgres's text form of the row, in sorted order. */
export type RowsSnapshot = Record<(typeof snapshotTables)[number], readonly string[]>;

/** One service with its own settings, for one describe block. */
export class SecEnv {
  readonly secret = randomBytes(32).toString("hex");
  private running: { service: Service; dataDir: string; drop: () => Promise<void> } | undefined;
  private readonly httpAgent = new HttpAgent({ keepAlive: true });
  private sessionManager: Http2SessionManager | undefined;
  private tables: Promise<{ name: string; key: string[]; scoped: boolean }[]> | undefined;

  constructor(readonly options: SecOptions = {}) {}

  get backend(): Backend {
    return this.options.backend ?? "pglite";
  }

  get service(): Service {
    if (this.running === undefined) throw new Error("service not started");
    return this.running.service;
  }

  get url(): string {
    return this.service.url;
  }

  /** Starts the service; `late` adds settings known only at start (e.g. a JWKS server's URL). */
  async start(late: SecOptions = {}): Promise<void> {
    const options: SecOptions = { ...this.options, ...late, auth: { ...this.options.auth, ...late.auth } };
    const dataDir = await mkdtemp(join(tmpdir(), "talkhub-sec-"));
    let database: DatabaseConfig = { kind: "pglite", dataDir: null };
    let drop = async (): Promise<void> => undefined;
    if (this.backend === "postgres") {
      const name = `th_sec_${randomBytes(6).toString("hex")}`;
      const admin = new pg.Client({ connectionString: postgresAdminUrl });
      await admin.connect();
      await admin.query(`CREATE DATABASE ${name}`);
      const url = new URL(postgresAdminUrl);
      url.pathname = `/${name}`;
      database = { kind: "postgres", url: url.toString(), poolSize: 10 };
      drop = async () => {
        await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        await admin.end();
      };
    }
    const config: Config = {
      host: "127.0.0.1",
      port: 0,
      database,
      auth: { secret: this.secret, jwksUrl: undefined, issuer: undefined, audience: undefined, ...options.auth },
      natsUrl: undefined,
      dataDir,
      live: { ...defaultLiveConfig, natsPrefix: `t${randomBytes(8).toString("hex")}`, ...options.live },
      http: { ...defaultHttpConfig, ...options.http },
      abuse: options.abuse ?? noAbuseLimits,
    };
    try {
      const service = await startService(config, { onError: () => undefined });
      this.running = { service, dataDir, drop };
      this.sessionManager = new Http2SessionManager(service.url);
    } catch (error) {
      await drop();
      await rm(dataDir, { recursive: true, force: true });
      throw error;
    }
  }

  async stop(): Promise<void> {
    this.sessionManager?.abort();
    this.httpAgent.destroy();
    const running = this.running;
    this.running = undefined;
    this.tables = undefined;
    if (running === undefined) return;
    await running.service.close();
    await running.drop();
    await rm(running.dataDir, { recursive: true, force: true });
  }

  /** Clients sending `Authorization: Bearer <token>` (or none); `authorization` overrides the header. */
  clients(token: string | undefined, via: Via, authorization?: string): Clients {
    return clientsOn(this.url, via, { token, authorization, httpAgent: this.httpAgent, sessionManager: this.sessionManager });
  }

  /**
   * Clients on their own HTTP/2 connection (gRPC) or keep-alive agent (Connect), for calls that
   * may break their connection; close() ends it.
   */
  isolatedClients(token: string | undefined, via: Via): Clients & { close(): void } {
    const sessionManager = new Http2SessionManager(this.url);
    const httpAgent = new HttpAgent({ keepAlive: false });
    return {
      ...clientsOn(this.url, via, { token, httpAgent, sessionManager }),
      close: () => {
        sessionManager.abort();
        httpAgent.destroy();
      },
    };
  }

  /** A new agent with an HS256 token of this service, entered into the directory by one call. */
  async agent(customerId: string, name: string, options: { role?: Role; via?: Via; register?: boolean } = {}): Promise<SecAgent> {
    const id = randomUUID();
    const role = options.role ?? "agent";
    const token = await mintToken(this.secret, { customerId, agentId: id, name, role });
    const agent: SecAgent = { id, customerId, name, token, role, ...this.clients(token, options.via ?? "grpc") };
    if (options.register ?? true) await agent.agents.listAgents({ pageSize: 1 });
    return agent;
  }

  /** The same agent with clients over another transport. */
  as(agent: SecAgent, via: Via): SecAgent {
    return { ...agent, ...this.clients(agent.token, via) };
  }

  /** Row counts of the tables a request may write. */
  async counts(): Promise<RowCounts> {
    const db = this.service.database.db;
    const columns = writtenTables.map((table) => `(SELECT count(*) FROM ${table}) AS ${table}`).join(", ");
    const { rows } = await sql.raw<Record<string, unknown>>(`SELECT ${columns}`).execute(db);
    const counts = {} as RowCounts;
    for (const table of writtenTables) counts[table] = Number(rows[0]?.[table]);
    return counts;
  }

  /**
   * Every row of every table of the service's schema, ordered by primary key: one query per
   * table (the list of tables and keys is read once per start). With `customers`, the tables
   * that have a customer_id column hold only those customers' rows (the others stay whole), so
   * a snapshot stays small in a database shared by many scenes. Compare two with
   * snapshotChanges(): an update, a soft delete or a status change shows, not only a new row.
   */
  async snapshot(customers?: readonly string[]): Promise<Snapshot> {
    const db = this.service.database.db;
    this.tables ??= sql<{ name: string; key: string | null; scoped: boolean }>`
      SELECT c.relname::text AS name,
        (SELECT string_agg(a.attname::text, ',' ORDER BY k.n)
           FROM pg_index i
           CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
           JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
          WHERE i.indrelid = c.oid AND i.indisprimary) AS key,
        EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'customer_id' AND NOT a.attisdropped) AS scoped
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = current_schema() AND c.relkind = 'r'
      ORDER BY 1`
      .execute(db)
      .then(({ rows }) => rows.map((r) => ({ name: r.name, key: r.key === null ? [] : r.key.split(","), scoped: r.scoped })));
    const snapshot = new Map<string, TableSnapshot>();
    for (const { name, key, scoped } of await this.tables) {
      const order = sql.raw(key.length === 0 ? "r::text" : key.map((column) => `r."${column}"`).join(", "));
      const where = customers !== undefined && customers.length > 0 && scoped ? sql`WHERE r.customer_id::text IN (${sql.join(customers)})` : sql``;
      const { rows } = await sql<Record<string, unknown>>`SELECT r.* FROM ${sql.table(name)} AS r ${where} ORDER BY ${order}`.execute(db);
      const byKey = new Map<string, SnapshotRow>();
      for (const raw of rows) {
        const row: Record<string, string | number | boolean | null> = {};
        for (const [column, value] of Object.entries(raw)) row[column] = plainValue(value);
        byKey.set(JSON.stringify(key.length === 0 ? row : key.map((column) => row[column])), row);
      }
      snapshot.set(name, { key, rows: byKey });
    }
    return snapshot;
  }

  /**
   * Every row of the snapshot tables, in one statement (so one consistent view): unlike counts(),
   * it shows updates, soft deletes and status changes.
   */
  async tableSnapshot(): Promise<RowsSnapshot> {
    const db = this.service.database.db;
    const union = snapshotTables.map((table) => `SELECT '${table}' AS tbl, t::text AS row FROM ${table} t`).join(" UNION ALL ");
    const { rows } = await sql.raw<{ tbl: string; row: string }>(`${union} ORDER BY 1, 2`).execute(db);
    const snapshot = Object.fromEntries(snapshotTables.map((table) => [table, [] as string[]])) as Record<(typeof snapshotTables)[number], string[]>;
    for (const { tbl, row } of rows) snapshot[tbl as (typeof snapshotTables)[number]].push(row);
    return snapshot;
  }
}

/** Starts a SecEnv for the enclosing describe block. */
export function useSecService(options: SecOptions = {}): SecEnv {
  const env = new SecEnv(options);
  beforeAll(() => env.start(), 60_000);
  afterAll(() => env.stop(), 60_000);
  return env;
}

// REST and JSON bodies are read loosely on purpose: the tests check the wire shape.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

export interface HttpReply {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly json: Json;
  /** The raw body bytes read. */
  readonly bytes: Buffer;
  /** True when the read stopped at the timeout (an open stream). */
  readonly timedOut: boolean;
}

export interface HttpOptions {
  readonly token?: string | undefined;
  readonly body?: string | Uint8Array | undefined;
  readonly headers?: Record<string, string>;
  /** Abort after this long (streams); what was read so far is returned. Default 20 s. */
  readonly timeoutMs?: number;
  /** Stop reading after the first complete line (NDJSON streams). */
  readonly firstLine?: boolean;
}

/**
 * One HTTP/1.1 request on its own connection (closed afterwards, so stopping the service never
 * waits for idle keep-alive sockets); reads the answer, up to the first line or the timeout for
 * streams. Rejects when no response head arrives before the timeout.
 */
export function httpCall(baseUrl: string, method: string, path: string, options: HttpOptions = {}): Promise<HttpReply> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token !== undefined) headers["Authorization"] = `Bearer ${options.token}`;
  if (options.body !== undefined) headers["Content-Length"] = String(Buffer.byteLength(options.body));
  return new Promise<HttpReply>((resolve, reject) => {
    const req = httpRequest(`${baseUrl}${path}`, { method, headers, agent: false });
    const chunks: Buffer[] = [];
    let settled = false;
    let response: IncomingMessage | undefined;
    const finish = (timedOut: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      if (response === undefined) {
        reject(new Error(`${method} ${path.slice(0, 120)}: no answer within ${options.timeoutMs ?? 20_000} ms`));
        return;
      }
      const bytes = Buffer.concat(chunks);
      let text = bytes.toString("utf8");
      if (options.firstLine === true && text.includes("\n")) text = text.slice(0, text.indexOf("\n"));
      let json: Json;
      try {
        json = text === "" ? undefined : JSON.parse(text);
      } catch {
        json = undefined;
      }
      const h = new Headers();
      for (const [name, value] of Object.entries(response.headers)) {
        if (value !== undefined) h.set(name, Array.isArray(value) ? value.join(", ") : value);
      }
      resolve({ status: response.statusCode ?? 0, headers: h, text, json, bytes, timedOut });
    };
    const timer = setTimeout(() => finish(true), options.timeoutMs ?? 20_000);
    req.on("response", (res) => {
      response = res;
      res.on("data", (chunk: Buffer) => {
        chunks.push(chunk);
        if (options.firstLine === true && chunk.includes(0x0a)) finish(false);
      });
      res.on("end", () => finish(false));
      res.on("error", () => finish(false));
      res.on("close", () => finish(false));
    });
    req.on("error", (error) => {
      if (settled) return;
      if (response !== undefined) return finish(false);
      settled = true;
      clearTimeout(timer);
      reject(error);
    });
    req.end(options.body === undefined ? undefined : Buffer.from(options.body));
  });
}

/** A Connect unary call with a raw body: POST /<service>/<method>. */
export function connectRaw(
  baseUrl: string,
  procedure: string,
  body: string | Uint8Array,
  contentType: "application/json" | "application/proto",
  token?: string,
  timeoutMs = 20_000,
): Promise<HttpReply> {
  return httpCall(baseUrl, "POST", `/${procedure}`, { token, body, headers: { "Content-Type": contentType }, timeoutMs });
}

export interface GrpcReply {
  readonly grpcStatus: number | undefined;
  readonly grpcMessage: string;
  readonly messages: number;
}

/** A gRPC call over h2c with a raw protobuf message (framed here); reads up to the trailers. */
export function grpcRaw(baseUrl: string, procedure: string, message: Uint8Array, token?: string, timeoutMs = 10_000): Promise<GrpcReply> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(baseUrl);
    session.on("error", () => undefined);
    const headers: http2.OutgoingHttpHeaders = {
      ":method": "POST",
      ":path": `/${procedure}`,
      "content-type": "application/grpc+proto",
      te: "trailers",
    };
    if (token !== undefined) headers["authorization"] = `Bearer ${token}`;
    const req = session.request(headers);
    let status: number | undefined;
    let grpcMessage = "";
    let data = Buffer.alloc(0);
    const timer = setTimeout(() => {
      req.close();
      session.destroy();
      resolve({ grpcStatus: status, grpcMessage, messages: -1 });
    }, timeoutMs);
    const take = (h: http2.IncomingHttpHeaders) => {
      if (h["grpc-status"] !== undefined) status = Number(h["grpc-status"]);
      if (typeof h["grpc-message"] === "string") grpcMessage = decodeURIComponent(h["grpc-message"]);
    };
    req.on("response", take);
    req.on("trailers", take);
    req.on("data", (chunk: Buffer) => (data = Buffer.concat([data, chunk])));
    req.on("error", (error) => {
      clearTimeout(timer);
      session.destroy();
      reject(error);
    });
    req.on("close", () => {
      clearTimeout(timer);
      session.close();
      let messages = 0;
      for (let at = 0; at + 5 <= data.length; at += 5 + data.readUInt32BE(at + 1)) messages += 1;
      resolve({ grpcStatus: status, grpcMessage, messages });
    });
    const frame = Buffer.alloc(5 + message.length);
    frame.writeUInt8(0, 0);
    frame.writeUInt32BE(message.length, 1);
    frame.set(message, 5);
    req.end(frame);
  });
}

/** The code of a call's failure ("ok" when it succeeded). */
export async function codeOf(call: Promise<unknown>): Promise<string> {
  try {
    await call;
    return "ok";
  } catch (reason) {
    return connectCodeName(ConnectError.from(reason).code);
  }
}

/** The Connect protocol's name of a code, e.g. "not_found". */
export function connectCodeName(code: Code): string {
  return Code[code].replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
}

/** The Connect/REST error codes a client's mistake may produce; never internal, unknown or data_loss. */
export const clientErrorCodes = new Set([
  "canceled",
  "invalid_argument",
  "not_found",
  "already_exists",
  "permission_denied",
  "unauthenticated",
  "resource_exhausted",
  "failed_precondition",
  "out_of_range",
  "unimplemented",
  "aborted",
]);

/** HTTP statuses a client's mistake may produce. */
export const clientErrorStatuses = new Set([400, 401, 403, 404, 405, 408, 409, 411, 413, 415, 429, 431, 499, 501, 505]);

export const withTimeout = <T>(promise: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([
    promise,
    new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)),
  ]);
