/**
 * Integration-test harness: one real Talkhub service per suite and backend, agents with
 * minted tokens, and typed clients over the Connect protocol (HTTP/1.1) and gRPC (HTTP/2).
 */
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { Agent as HttpAgent } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleepMs } from "node:timers/promises";
import { afterAll, beforeAll, beforeEach, expect } from "vitest";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import type { Client, Interceptor, Transport } from "@connectrpc/connect";
import { Http2SessionManager, createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { AgentService } from "../../gen/talk/v1/agent_service_pb.js";
import { MessageService } from "../../gen/talk/v1/message_service_pb.js";
import type { Message, Talk } from "../../gen/talk/v1/resources_pb.js";
import { TalkService } from "../../gen/talk/v1/talk_service_pb.js";
import { mintToken } from "../../src/auth/tokens.js";
import { defaultHttpConfig, defaultLiveConfig } from "../../src/config.js";
import type { AbuseLimits, AuthConfig, Config, DatabaseConfig, HttpConfig, LiveConfig } from "../../src/config.js";
import { startService } from "../../src/service.js";
import { createTestDatabase, databaseConfig, type TestDatabase } from "./database.js";
import { dependenciesReachable, sharedNatsUrl } from "./reachability.js";
import { rowCounts, schemaTables, takeSnapshot, type RowCounts, type SchemaTable, type Snapshot } from "./table-snapshot.js";
import type { Service } from "../../src/service.js";

export type Backend = "pglite" | "postgres";
export type Via = "connect" | "grpc";
export type Role = "agent" | "admin";

/**
 * The backends every suite runs against, for describe.each: "pglite" (embedded database,
 * in-process bus) and "postgres" (a database of its own on the shared Postgres, and the shared
 * NATS as its bus with a random subject prefix). Postgres runs only when both servers answer;
 * under CI=true a missing one fails the file, otherwise it is listed in the NOT RUN summary.
 */
export const backends: readonly Backend[] = (await dependenciesReachable("postgres+NATS backend", { postgres: true, sharedNats: true }))
  ? ["pglite", "postgres"]
  : ["pglite"];

/** The NATS server the postgres backend's services use as their bus. */
export const natsUrl = sharedNatsUrl;

/** The backends of the live-events suites: the same as `backends` (postgres always has NATS). */
export async function liveBackends(): Promise<readonly Backend[]> {
  return backends;
}

/** A random NATS subject prefix, so that suites sharing a NATS server never see each other. */
export const randomNatsPrefix = (): string => `t${randomBytes(8).toString("hex")}`;

/** Typed clients of the three services, all sending one token (or none). */
export interface Clients {
  readonly via: Via;
  readonly talks: Client<typeof TalkService>;
  readonly messages: Client<typeof MessageService>;
  readonly agents: Client<typeof AgentService>;
}

/** An agent with a token and clients acting as it. */
export interface TestAgent extends Clients {
  readonly id: string;
  readonly customerId: string;
  readonly name: string;
  readonly token: string;
  /** The role its token carries ("agent" when the token names none). */
  readonly role: Role;
}

export interface AgentOptions {
  readonly role?: Role;
  /** Transport for this agent; by default agents alternate, starting differently per test. */
  readonly via?: Via;
  /** Make one call so the agent is in the directory (default true). */
  readonly register?: boolean;
}

export interface ServiceEnvOptions {
  /**
   * Overrides of the live settings (heartbeatMs, gapCheckMs, streamMaxQueued...). natsPrefix
   * defaults to a random one per service.
   */
  readonly live?: Partial<LiveConfig>;
  /** Per-agent limits (none by default). */
  readonly abuse?: AbuseLimits;
  /** Overrides of the token verification (a JWKS URL, issuer, audience...); the secret is the env's. */
  readonly auth?: Partial<AuthConfig>;
  /** Overrides of the HTTP settings (timeouts, body limit, CORS origins...). */
  readonly http?: Partial<HttpConfig>;
  /** A database of the test's own (e.g. a private Postgres server) instead of the backend's. */
  readonly database?: DatabaseConfig;
  /** The transport of agents made without one; by default agents alternate (see AgentOptions.via). */
  readonly agentVia?: Via;
  /** Receives the service's unexpected errors (those it would log at error level). */
  readonly onError?: (error: unknown, where: string) => void;
  /** Told every statement the service sends to its database (BEGIN and COMMIT included). */
  readonly onStatement?: (sql: string) => void;
}

/** Where clients connect and how they authenticate. */
export interface ClientOptions {
  readonly token: string | undefined;
  /** Sent as the Authorization header instead of `Bearer <token>`. */
  readonly authorization?: string | undefined;
  /** The keep-alive agent of Connect (HTTP/1.1) clients. */
  readonly httpAgent: HttpAgent;
  /** The HTTP/2 connection of gRPC clients; a new one when undefined. */
  readonly sessionManager: Http2SessionManager | undefined;
}

/** The service's three clients at `baseUrl`, over Connect (HTTP/1.1) or gRPC (HTTP/2). */
export function clientsOn(baseUrl: string, via: Via, options: ClientOptions): Clients {
  const auth: Interceptor = (next) => async (request) => {
    if (options.authorization !== undefined) request.header.set("Authorization", options.authorization);
    else if (options.token !== undefined) request.header.set("Authorization", `Bearer ${options.token}`);
    return next(request);
  };
  const transport: Transport =
    via === "connect"
      ? createConnectTransport({ baseUrl, httpVersion: "1.1", nodeOptions: { agent: options.httpAgent }, interceptors: [auth] })
      : createGrpcTransport({
          baseUrl,
          ...(options.sessionManager === undefined ? {} : { sessionManager: options.sessionManager }),
          interceptors: [auth],
        });
  return {
    via,
    talks: createClient(TalkService, transport),
    messages: createClient(MessageService, transport),
    agents: createClient(AgentService, transport),
  };
}

/**
 * A running service for one suite; use inside describe (useService registers the hooks). The
 * pglite backend runs on an in-memory database with the in-process bus; the postgres backend on a
 * database of its own with the shared NATS as its bus, under a random subject prefix.
 */
export class TestEnv {
  readonly secret: string;
  private running: { service: Service; database: TestDatabase | undefined; dataDir: string; closed: boolean } | undefined;
  private readonly httpAgent = new HttpAgent({ keepAlive: true });
  private sessionManager: Http2SessionManager | undefined;
  private readonly siblings: TestEnv[] = [];
  private tables: Promise<SchemaTable[]> | undefined;
  /** The options the service was started with (the constructor's and start's). */
  private started: ServiceEnvOptions = {};
  private testIndex = 0;
  private agentIndex = 0;

  constructor(
    readonly backend: Backend,
    readonly options: ServiceEnvOptions = {},
    /** A database (and secret) shared with another TestEnv; owned and dropped by that one. */
    private readonly shared?: { database: TestDatabase; secret: string },
  ) {
    this.secret = shared?.secret ?? randomBytes(32).toString("hex");
  }

  get service(): Service {
    if (this.running === undefined) throw new Error("service not started");
    return this.running.service;
  }

  get url(): string {
    return this.service.url;
  }

  /** Runs SQL on the suite's database; undefined on PGlite, whose database is in-process. */
  get query(): TestDatabase["query"] | undefined {
    return this.running?.database?.query;
  }

  /** The live settings the service runs with (defaults, a random natsPrefix, the overrides). */
  liveConfig: LiveConfig = defaultLiveConfig;

  /** The NATS URL the service uses as its bus; undefined for the in-process bus. */
  busUrl: string | undefined;

  /** Starts the service; `late` adds settings known only then (e.g. a JWKS server's URL). */
  async start(late: ServiceEnvOptions = {}): Promise<void> {
    const options: ServiceEnvOptions = { ...this.options, ...late, auth: { ...this.options.auth, ...late.auth } };
    this.started = options;
    const database =
      this.shared?.database ?? (this.backend === "postgres" && options.database === undefined ? await createTestDatabase() : undefined);
    const dataDir = await mkdtemp(join(tmpdir(), "talkhub-test-"));
    this.busUrl = this.backend === "postgres" ? natsUrl : undefined;
    this.liveConfig = { ...defaultLiveConfig, natsPrefix: randomNatsPrefix(), ...options.live };
    const config: Config = {
      host: "127.0.0.1",
      port: 0,
      database: options.database ?? databaseConfig(database),
      auth: { secret: this.secret, jwksUrl: undefined, issuer: undefined, audience: undefined, ...options.auth },
      natsUrl: this.busUrl,
      dataDir,
      live: this.liveConfig,
      ...(options.http === undefined ? {} : { http: { ...defaultHttpConfig, ...options.http } }),
      ...(options.abuse === undefined ? {} : { abuse: options.abuse }),
    };
    try {
      const service = await startService(config, {
        ...(options.onError === undefined ? {} : { onError: options.onError }),
        ...(options.onStatement === undefined ? {} : { onStatement: options.onStatement }),
      });
      this.running = { service, database, dataDir, closed: false };
      this.sessionManager = new Http2SessionManager(service.url);
    } catch (error) {
      if (this.shared === undefined) await database?.drop();
      await rm(dataDir, { recursive: true, force: true });
      throw error;
    }
  }

  /**
   * Starts a second service on this one's database (postgres only: PGlite lives in memory),
   * with the same secret and its own live settings (by default another random natsPrefix, so
   * that the two never hear each other's bus). It is stopped with this one.
   */
  async sibling(options: ServiceEnvOptions = {}): Promise<TestEnv> {
    const database = this.running?.database;
    if (this.running === undefined) throw new Error("service not started");
    if (database === undefined) throw new Error("a sibling service needs a shared (postgres) database");
    const env = new TestEnv(this.backend, options, { database, secret: this.secret });
    await env.start();
    this.siblings.push(env);
    return env;
  }

  /** Closes the service (e.g. to test shutdown); stop() then only cleans up. */
  async closeService(): Promise<void> {
    const running = this.running;
    if (running === undefined || running.closed) return;
    running.closed = true;
    await running.service.close();
  }

  async stop(): Promise<void> {
    for (const sibling of this.siblings.splice(0)) await sibling.stop();
    this.sessionManager?.abort();
    this.httpAgent.destroy();
    const running = this.running;
    this.running = undefined;
    this.tables = undefined;
    if (running === undefined) return;
    if (!running.closed) await running.service.close();
    if (this.shared === undefined) await running.database?.drop();
    await rm(running.dataDir, { recursive: true, force: true });
  }

  nextTest(): void {
    this.testIndex += 1;
    this.agentIndex = 0;
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

  /** The same agent (same token), with clients talking to this env's service. */
  as(agent: TestAgent, via: Via = agent.via): TestAgent {
    return {
      id: agent.id,
      customerId: agent.customerId,
      name: agent.name,
      token: agent.token,
      role: agent.role,
      ...this.clients(agent.token, via),
    };
  }

  /** Mints a token for a new agent (fresh UUID) and, by default, enters it into the directory. */
  async agent(customerId: string, name: string, options: AgentOptions = {}): Promise<TestAgent> {
    const id = randomUUID();
    const role = options.role;
    const token = await mintToken(this.secret, { customerId, agentId: id, name, role });
    const via = options.via ?? this.started.agentVia ?? ((this.testIndex + this.agentIndex++) % 2 === 0 ? "connect" : "grpc");
    const agent: TestAgent = { id, customerId, name, token, role: role ?? "agent", ...this.clients(token, via) };
    if (options.register ?? true) await agent.talks.listTalks({});
    return agent;
  }

  /** Row counts of the tables a request may write. */
  counts(): Promise<RowCounts> {
    return rowCounts(this.service.database.db);
  }

  /**
   * Every row of every table of the service's schema, by primary key (the list of tables is read
   * once per start); with `customers`, the tables with a customer_id hold only those customers'
   * rows. Compare two with toEqual, or with snapshotChanges() to see what changed.
   */
  async snapshot(customers?: readonly string[]): Promise<Snapshot> {
    const db = this.service.database.db;
    this.tables ??= schemaTables(db);
    return takeSnapshot(db, await this.tables, customers);
  }
}

/**
 * Starts one service for the enclosing describe block (beforeAll) and stops it (afterAll).
 * `options` may be a function, called at the start, for settings known only then.
 */
export function useService(backend: Backend, options: ServiceEnvOptions | (() => ServiceEnvOptions) = {}): TestEnv {
  const env = new TestEnv(backend, typeof options === "function" ? {} : options);
  beforeAll(() => env.start(typeof options === "function" ? options() : {}));
  afterAll(() => env.stop());
  beforeEach(() => env.nextTest());
  return env;
}

/** A fresh customer (tenant) id, so tests never see each other's data. */
export const newCustomer = (): string => randomUUID();

/**
 * Awaits a call that must fail with `code`; when `mentions` is given the error message must
 * contain it (InvalidArgument names the field). Returns the error for further checks.
 */
export async function expectCode(call: Promise<unknown>, code: Code, mentions?: string): Promise<ConnectError> {
  let error: ConnectError | undefined;
  try {
    await call;
  } catch (reason) {
    error = ConnectError.from(reason);
  }
  if (error === undefined) throw new Error(`expected ${Code[code]}, but the call succeeded`);
  expect(Code[error.code], `error: ${error.message}`).toBe(Code[code]);
  if (mentions !== undefined) expect(error.rawMessage).toContain(mentions);
  return error;
}

/** Unwraps an optional response field that must be present. */
export function must<T>(value: T | undefined, what = "value"): T {
  if (value === undefined) throw new Error(`${what} is missing from the response`);
  return value;
}

/** Milliseconds since the epoch of a timestamp that must be set. */
export function ms(timestamp: Timestamp | undefined): number {
  return timestampDate(must(timestamp, "timestamp")).getTime();
}

/** `owner` creates a talk (group by default) with `others`. */
export async function createTalk(owner: TestAgent, others: readonly TestAgent[], type: "normal" | "group" = "group"): Promise<Talk> {
  const response = await owner.talks.createTalk({ type, participantIds: others.map((agent) => agent.id) });
  return must(response.talk, "talk");
}

/** `sender` sends a text message to a talk. */
export async function sendText(sender: TestAgent, chatId: string, text: string, parentId = ""): Promise<Message> {
  const response = await sender.messages.sendMessage({ chatId, text, parentId });
  return must(response.message, "message");
}

export const sleep = (milliseconds: number): Promise<void> => sleepMs(milliseconds);

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export { Code };
