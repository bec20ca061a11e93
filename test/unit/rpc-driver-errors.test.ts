/**
 * A database that cannot be reached answers UNAVAILABLE from every RPC, whichever use case met
 * it: the driver's errors are recognized where errors become codes (rpc/errors.ts), not by each
 * use case. The RPCs run through the service's handlers and error interceptor over a Kysely
 * whose driver fails as pg does when Postgres refuses connections, drops them, or shuts down.
 */
import { Code, ConnectError, createClient, createRouterTransport, type Interceptor } from "@connectrpc/connect";
import { Kysely, PostgresAdapter, PostgresIntrospector, PostgresQueryCompiler, type DatabaseConnection, type Driver } from "kysely";
import { describe, expect, it } from "vitest";
import { AgentService } from "../../gen/talk/v1/agent_service_pb.js";
import { MessageService } from "../../gen/talk/v1/message_service_pb.js";
import { TalkService } from "../../gen/talk/v1/talk_service_pb.js";
import { noAbuseLimits } from "../../src/config.js";
import { Callers } from "../../src/domain/agents.js";
import type { DomainDeps } from "../../src/domain/deps.js";
import { NotFound } from "../../src/domain/model/errors.js";
import type { Identity } from "../../src/domain/model/identity.js";
import { WriteLimits } from "../../src/domain/write/write-limits.js";
import type { WatchDeps } from "../../src/live/watch.js";
import { callerKey } from "../../src/rpc/caller.js";
import { toConnectError } from "../../src/rpc/errors.js";
import { apiServices, routesOf } from "../../src/rpc/index.js";
import { errorInterceptor } from "../../src/rpc/interceptors.js";
import type { Schema } from "../../src/store/schema/index.js";
import { ann, customer, mid, tid } from "./send-fixtures.js";

/** An error as pg throws it: a message, and the SQLSTATE or socket code when it has one. */
function driverError(message: string, code?: string): Error {
  return Object.assign(new Error(message), code === undefined ? {} : { code });
}

const failures = {
  refused: { connect: driverError("connect ECONNREFUSED 127.0.0.1:5432", "ECONNREFUSED") },
  terminated: { query: driverError("Connection terminated unexpectedly") },
  "shut down": { query: driverError("terminating connection due to administrator command", "57P01") },
} as const;

/** A Kysely whose driver fails to connect, or connects and fails every statement. */
function failingDatabase(failure: { readonly connect?: Error; readonly query?: Error }): Kysely<Schema> {
  const connection: DatabaseConnection = {
    executeQuery: () => Promise.reject(failure.query ?? new Error("no query expected")),
    // biome-ignore lint/correctness/useYield: a stream that fails before its first row
    async *streamQuery() {
      throw failure.query ?? new Error("no query expected");
    },
  };
  const driver: Driver = {
    init: async () => {},
    acquireConnection: () => (failure.connect === undefined ? Promise.resolve(connection) : Promise.reject(failure.connect)),
    // pg begins with a statement, which fails as any other.
    beginTransaction: () => (failure.query === undefined ? Promise.resolve() : Promise.reject(failure.query)),
    commitTransaction: async () => {},
    rollbackTransaction: async () => {},
    releaseConnection: async () => {},
    destroy: async () => {},
  };
  return new Kysely<Schema>({
    dialect: {
      createAdapter: () => new PostgresAdapter(),
      createDriver: () => driver,
      createIntrospector: (db) => new PostgresIntrospector(db),
      createQueryCompiler: () => new PostgresQueryCompiler(),
    },
  });
}

const admin: Identity = { ...ann, role: "admin" };

/** The service's API handlers behind its error interceptor, for a caller, over `db`. */
function clientsOver(db: Kysely<Schema>, internal: unknown[]) {
  const deps: DomainDeps = {
    db,
    events: { publish: () => {} },
    now: () => new Date(),
    writeLimits: new WriteLimits(noAbuseLimits.writes, async (requests) => requests.map(() => ({ granted: 0, left: 0 }))),
    sends: { submit: () => Promise.reject(new Error("no send expected")) },
  };
  // No watch is opened here: the unary RPCs never read it.
  const watch = {} as WatchDeps;
  const services = apiServices({ deps, callers: new Callers(deps), watch });
  const asCaller: Interceptor = (next) => (req) => {
    req.contextValues.set(callerKey, admin);
    return next(req);
  };
  const transport = createRouterTransport(routesOf(services), {
    router: { interceptors: [errorInterceptor((error) => internal.push(error)), asCaller] },
  });
  return {
    talks: createClient(TalkService, transport),
    messages: createClient(MessageService, transport),
    agents: createClient(AgentService, transport),
  };
}

type Clients = ReturnType<typeof clientsOver>;

/** Use cases that read or write, each one RPC. */
const calls: Record<string, (c: Clients) => Promise<unknown>> = {
  GetTalk: (c) => c.talks.getTalk({ id: tid(1) }),
  ListTalks: (c) => c.talks.listTalks({ pageSize: 10 }),
  UpdateTalk: (c) => c.talks.updateTalk({ id: tid(1), name: "renamed" }),
  CloseTalk: (c) => c.talks.closeTalk({ id: tid(1) }),
  ListParticipants: (c) => c.talks.listParticipants({ chatId: tid(1) }),
  GetMessage: (c) => c.messages.getMessage({ id: mid(1) }),
  ListMessages: (c) => c.messages.listMessages({ chatId: tid(1), pageSize: 10 }),
  UpdateMessage: (c) => c.messages.updateMessage({ id: mid(1), text: "edited" }),
  AddReaction: (c) => c.messages.addReaction({ messageId: mid(1), emoji: "👍" }),
  CreateAgent: (c) => c.agents.createAgent({ id: "a0000000-0000-4000-8000-0000000000c1", name: "Cy", role: "agent" }),
  GetAgent: (c) => c.agents.getAgent({ id: ann.agentId }),
  ListAgents: (c) => c.agents.listAgents({ pageSize: 10 }),
};

describe.each(Object.entries(failures))("a database that %s", (_, failure) => {
  it.each(Object.keys(calls))("%s answers UNAVAILABLE, and nothing is reported as an internal error", async (name) => {
    const internal: unknown[] = [];
    const call = calls[name];
    if (call === undefined) throw new Error(`no call ${name}`);
    const error = await call(clientsOver(failingDatabase(failure), internal)).then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    expect(error?.code, error?.rawMessage).toBe(Code.Unavailable);
    expect(error?.rawMessage).toBe("the database is unavailable");
    expect(internal).toEqual([]);
  });
});

describe("toConnectError", () => {
  it("answers a driver's unreachable-database error UNAVAILABLE, keeping it as the cause", () => {
    const refused = failures.refused.connect;
    const error = toConnectError(refused);
    expect(error.code).toBe(Code.Unavailable);
    expect(error.cause).toMatchObject({ cause: refused });
  });

  it("keeps other errors as they were: a domain error its code, anything else INTERNAL", () => {
    expect(toConnectError(new NotFound("talk", tid(1))).code).toBe(Code.NotFound);
    expect(toConnectError(driverError("duplicate key value violates unique constraint", "23505")).code).toBe(Code.Internal);
    expect(toConnectError(new Error(`customer ${customer} exploded`)).code).toBe(Code.Internal);
  });
});
