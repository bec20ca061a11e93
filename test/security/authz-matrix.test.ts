/**
 * The authorization matrix: every RPC the service's router serves (gRPC and Connect) and every
 * REST binding, called as a participant, a non-participant of the same customer, an admin of
 * the same customer who does not take part, an agent and an admin of another customer, and
 * without a token, on both backends. The rows are checked against the router, so a new RPC
 * fails here until it is classified. A refused call must leave every table as it was (a full
 * snapshot before and after each one); an allowed call must have its effect (the row changed
 * as asked), and an allowed read must change nothing. The WebSocket topics and the operator
 * endpoints are covered below the RPCs.
 */
import { randomUUID } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { createConnectRouter } from "@connectrpc/connect";
import { fromJson, type DescMethod, type DescService, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import { ConnectError } from "@connectrpc/connect";
import { Callers } from "../../src/domain/agents.js";
import { restBindings, type RestBinding } from "../../src/http/rest/bindings.js";
import { apiServices, routesOf } from "../../src/rpc/index.js";
import { backends, must, useService } from "../support/harness.js";
import type { Clients, TestAgent, TestEnv, Via } from "../support/harness.js";
import { WsClient } from "../support/live-helpers.js";
import { connectCodeName, httpCall } from "../support/security-helpers.js";
import { describeChanges, snapshotChanges, type Snapshot, type SnapshotRow, type TableChanges } from "../support/table-snapshot.js";

const callers = ["participant", "outsider", "admin", "foreign", "foreignAdmin", "anonymous"] as const;
type Caller = (typeof callers)[number];
type Outcome = "ok" | "not_found" | "permission_denied" | "unauthenticated";
type Row = Record<Exclude<Caller, "anonymous">, Outcome>;

const talkRow: Row = { participant: "ok", outsider: "not_found", admin: "not_found", foreign: "not_found", foreignAdmin: "not_found" };
const everyone: Row = { participant: "ok", outsider: "ok", admin: "ok", foreign: "ok", foreignAdmin: "ok" };
const adminOnly: Row = {
  participant: "permission_denied",
  outsider: "permission_denied",
  admin: "ok",
  foreign: "permission_denied",
  foreignAdmin: "not_found",
};

/** What an allowed call must have done, seen in the tables' changes; a message when it did not. */
interface EffectContext {
  readonly changes: ReadonlyMap<string, TableChanges>;
  readonly after: Snapshot;
  readonly s: Scene;
  readonly caller: TestAgent;
}
type Effect = (c: EffectContext) => string | undefined;

/** A read: the tables are as they were. */
const reads: Effect = ({ changes }) => (changes.size === 0 ? undefined : `a read changed the tables: ${describeChanges(changes)}`);

/** A row of `table` was added that matches. */
const added =
  (table: string, what: string, match: (row: SnapshotRow, c: EffectContext) => boolean): Effect =>
  (c) =>
    (c.changes.get(table)?.added ?? []).some((row) => match(row, c))
      ? undefined
      : `no ${table} row added with ${what}: ${describeChanges(c.changes)}`;

/** A row of `table` was changed so that it matches. */
const changed =
  (table: string, what: string, match: (row: SnapshotRow, c: EffectContext) => boolean): Effect =>
  (c) =>
    (c.changes.get(table)?.changed ?? []).some(({ after }) => match(after, c))
      ? undefined
      : `no ${table} row changed to ${what}: ${describeChanges(c.changes)}`;

/** A row of `table` that matches is gone, or (soft delete) now has tm_delete set. */
const deleted =
  (table: string, what: string, match: (row: SnapshotRow, c: EffectContext) => boolean): Effect =>
  (c) => {
    const diff = c.changes.get(table);
    const gone = (diff?.removed ?? []).some((row) => match(row, c));
    const marked = (diff?.changed ?? []).some(
      ({ before, after }) => match(after, c) && before["tm_delete"] === null && after["tm_delete"] !== null,
    );
    return gone || marked ? undefined : `no ${table} row deleted with ${what}: ${describeChanges(c.changes)}`;
  };

interface Spec {
  readonly who: Row;
  readonly effect: Effect;
}

/** The expected outcome per RPC and what an allowed call does; without a token every call is unauthenticated. */
const matrix: Record<string, Spec> = {
  "TalkService.CreateTalk": {
    who: { ...everyone, foreign: "not_found", foreignAdmin: "not_found" },
    effect: added(
      "talks",
      "a group talk of the caller's customer",
      (r, c) => r["type"] === "group" && r["customer_id"] === c.caller.customerId,
    ),
  },
  "TalkService.GetTalk": { who: talkRow, effect: reads },
  "TalkService.ListTalks": { who: everyone, effect: reads },
  "TalkService.UpdateTalk": {
    who: talkRow,
    effect: changed("talks", 'name "renamed"', (r, c) => r["id"] === c.s.talkId && r["name"] === "renamed"),
  },
  "TalkService.CloseTalk": {
    who: talkRow,
    effect: changed("talks", "status closed", (r, c) => r["id"] === c.s.talkId && r["status"] === "closed"),
  },
  "TalkService.ReopenTalk": {
    who: talkRow,
    effect: changed("talks", "status active", (r, c) => r["id"] === c.s.talkId && r["status"] === "active"),
  },
  "TalkService.DeleteTalk": { who: talkRow, effect: deleted("talks", "the scene's id", (r, c) => r["id"] === c.s.talkId) },
  "TalkService.AddParticipant": {
    who: talkRow,
    effect: added("participants", "the third agent in the talk", (r, c) => r["chat_id"] === c.s.talkId && r["owner_id"] === c.s.third.id),
  },
  "TalkService.RemoveParticipant": {
    who: talkRow,
    effect: deleted("participants", "the other's membership", (r, c) => r["id"] === c.s.otherParticipantId),
  },
  "TalkService.ListParticipants": { who: talkRow, effect: reads },
  "TalkService.WatchTalk": { who: talkRow, effect: reads },
  "TalkService.WatchEvents": { who: everyone, effect: reads },
  "MessageService.SendMessage": {
    who: talkRow,
    effect: added(
      "messages",
      'text "matrix" by the caller',
      (r, c) => r["chat_id"] === c.s.talkId && r["text"] === "matrix" && r["owner_id"] === c.caller.id,
    ),
  },
  "MessageService.GetMessage": { who: talkRow, effect: reads },
  "MessageService.ListMessages": { who: talkRow, effect: reads },
  "MessageService.UpdateMessage": {
    who: talkRow,
    effect: changed("messages", 'text "edited"', (r, c) => r["id"] === c.s.messageId && r["text"] === "edited"),
  },
  "MessageService.DeleteMessage": { who: talkRow, effect: deleted("messages", "the scene's message", (r, c) => r["id"] === c.s.messageId) },
  "MessageService.AddReaction": {
    who: talkRow,
    effect: added(
      "reactions",
      "heart by the caller",
      (r, c) => r["message_id"] === c.s.messageId && r["emoji"] === "heart" && r["owner_id"] === c.caller.id,
    ),
  },
  "MessageService.RemoveReaction": {
    who: talkRow,
    effect: deleted(
      "reactions",
      "the caller's thumbsup",
      (r, c) => r["message_id"] === c.s.messageId && r["emoji"] === "thumbsup" && r["owner_id"] === c.caller.id,
    ),
  },
  "AgentService.CreateAgent": {
    who: { ...adminOnly, foreignAdmin: "ok" },
    effect: added(
      "agents",
      'name "Created" in the caller\'s customer',
      (r, c) => r["name"] === "Created" && r["customer_id"] === c.caller.customerId,
    ),
  },
  "AgentService.GetAgent": {
    who: { participant: "ok", outsider: "ok", admin: "ok", foreign: "not_found", foreignAdmin: "not_found" },
    effect: reads,
  },
  "AgentService.ListAgents": { who: everyone, effect: reads },
  "AgentService.UpdateAgent": {
    who: adminOnly,
    effect: changed("agents", 'name "Renamed"', (r, c) => r["id"] === c.s.other.id && r["name"] === "Renamed"),
  },
  "AgentService.DeleteAgent": { who: adminOnly, effect: deleted("agents", "the other agent", (r, c) => r["id"] === c.s.other.id) },
};

/** The REST paths each RPC must have, so that a new or changed binding fails until listed here. */
const expectedBindings = [
  "POST /v1.0/talks",
  "POST /v1.0/service_agents/talk_chats",
  "GET /v1.0/talks/{id}",
  "GET /v1.0/service_agents/talk_chats/{id}",
  "GET /v1.0/talks",
  "GET /v1.0/service_agents/talk_chats",
  "PUT /v1.0/talks/{id}",
  "PUT /v1.0/service_agents/talk_chats/{id}",
  "PATCH /v1.0/talks/{id}",
  "PATCH /v1.0/service_agents/talk_chats/{id}",
  "POST /v1.0/talks/{id}/close",
  "POST /v1.0/service_agents/talk_chats/{id}/close",
  "POST /v1.0/talks/{id}/reopen",
  "POST /v1.0/service_agents/talk_chats/{id}/reopen",
  "DELETE /v1.0/talks/{id}",
  "DELETE /v1.0/service_agents/talk_chats/{id}",
  "POST /v1.0/talks/{chat_id}/participants",
  "POST /v1.0/service_agents/talk_chats/{chat_id}/participants",
  "DELETE /v1.0/talks/{chat_id}/participants/{participant_id}",
  "DELETE /v1.0/service_agents/talk_chats/{chat_id}/participants/{participant_id}",
  "GET /v1.0/talks/{chat_id}/participants",
  "GET /v1.0/service_agents/talk_chats/{chat_id}/participants",
  "GET /v1.0/talks/{chat_id}/events",
  "GET /v1.0/service_agents/talk_chats/{chat_id}/events",
  "GET /v1.0/events",
  "GET /v1.0/service_agents/events",
  "POST /v1.0/talks/{chat_id}/messages",
  "POST /v1.0/service_agents/talk_messages",
  "GET /v1.0/messages/{id}",
  "GET /v1.0/service_agents/talk_messages/{id}",
  "GET /v1.0/talks/{chat_id}/messages",
  "GET /v1.0/service_agents/talk_messages",
  "PUT /v1.0/messages/{id}",
  "PUT /v1.0/service_agents/talk_messages/{id}",
  "PATCH /v1.0/messages/{id}",
  "PATCH /v1.0/service_agents/talk_messages/{id}",
  "DELETE /v1.0/messages/{id}",
  "DELETE /v1.0/service_agents/talk_messages/{id}",
  "POST /v1.0/messages/{message_id}/reactions",
  "POST /v1.0/service_agents/talk_messages/{message_id}/reactions",
  "DELETE /v1.0/messages/{message_id}/reactions/{emoji}",
  "DELETE /v1.0/service_agents/talk_messages/{message_id}/reactions/{emoji}",
  "DELETE /v1.0/messages/{message_id}/reactions",
  "DELETE /v1.0/service_agents/talk_messages/{message_id}/reactions",
  "POST /v1.0/agents",
  "GET /v1.0/agents/{id}",
  "GET /v1.0/agents",
  "PUT /v1.0/agents/{id}",
  "PATCH /v1.0/agents/{id}",
  "DELETE /v1.0/agents/{id}",
];

const rowKey = (method: DescMethod) => `${method.parent.name}.${method.name}`;
const bindingKey = (b: RestBinding) => `${b.httpMethod} ${b.template.source}`;

const statusOf: Record<Outcome, number> = { ok: 200, not_found: 404, permission_denied: 403, unauthenticated: 401 };

interface Cast {
  readonly customer: string;
  readonly participant: TestAgent;
  readonly outsider: TestAgent;
  readonly admin: TestAgent;
  readonly foreign: TestAgent;
  readonly foreignAdmin: TestAgent;
  /** Agents of the customer that scenes put into (other) or add to (third) their talks. */
  readonly other: TestAgent;
  readonly third: TestAgent;
}

/** What one cell acts on: a fresh talk (group: participant + other), a message, the other's membership. */
interface Scene {
  readonly talkId: string;
  readonly messageId: string;
  readonly other: TestAgent;
  readonly otherParticipantId: string;
  readonly third: TestAgent;
}

async function scene(cast: Cast, method: DescMethod | undefined): Promise<Scene> {
  const { other, third } = cast;
  const talk = must((await cast.participant.talks.createTalk({ type: "group", participantIds: [other.id] })).talk);
  const message = must((await cast.participant.messages.sendMessage({ chatId: talk.id, text: "hi" })).message);
  await cast.participant.messages.addReaction({ messageId: message.id, emoji: "thumbsup" });
  const participants = (await cast.participant.talks.listParticipants({ chatId: talk.id })).result;
  if (method?.name === "ReopenTalk") await cast.participant.talks.closeTalk({ id: talk.id });
  return {
    talkId: talk.id,
    messageId: message.id,
    other,
    third,
    otherParticipantId: must(participants.find((p) => p.ownerId === other.id)).id,
  };
}

/** The request of a cell, as proto-JSON (field names as in the protos). */
function requestOf(method: DescMethod, s: Scene): JsonObject {
  switch (method.name) {
    case "CreateTalk":
      return { type: "group", participant_ids: [s.other.id] };
    case "GetTalk":
    case "CloseTalk":
    case "ReopenTalk":
    case "DeleteTalk":
      return { id: s.talkId };
    case "UpdateTalk":
      return { id: s.talkId, name: "renamed" };
    case "ListTalks":
    case "ListAgents":
      return { page_size: 5 };
    case "AddParticipant":
      return { chat_id: s.talkId, agent_id: s.third.id };
    case "RemoveParticipant":
      return { chat_id: s.talkId, participant_id: s.otherParticipantId };
    case "ListParticipants":
    case "ListMessages":
      return { chat_id: s.talkId };
    case "WatchTalk":
      return { chat_id: s.talkId, after_seq: "0" };
    case "WatchEvents":
      return {};
    case "SendMessage":
      return { chat_id: s.talkId, text: "matrix" };
    case "GetMessage":
    case "DeleteMessage":
      return { id: s.messageId };
    case "UpdateMessage":
      return { id: s.messageId, text: "edited" };
    case "AddReaction":
      return { message_id: s.messageId, emoji: "heart" };
    case "RemoveReaction":
      return { message_id: s.messageId, emoji: "thumbsup" };
    case "CreateAgent":
      return { name: "Created" };
    case "GetAgent":
    case "DeleteAgent":
      return { id: s.other.id };
    case "UpdateAgent":
      return { id: s.other.id, name: "Renamed" };
    default:
      throw new Error(`no request for ${method.name}: add it (and a matrix row)`);
  }
}

/** Calls an RPC with typed clients; streams: the first response or the error. */
async function callRpc(clients: Clients, method: DescMethod, json: JsonObject): Promise<string> {
  const byService: Record<string, object> = { TalkService: clients.talks, MessageService: clients.messages, AgentService: clients.agents };
  const service = byService[method.parent.name];
  if (service === undefined) throw new Error(`no client for ${method.parent.typeName}: add one to the harness`);
  const fn = (service as unknown as Record<string, (req: unknown, options?: unknown) => unknown>)[method.localName];
  if (fn === undefined) throw new Error(`no client method ${method.localName}`);
  const request = fromJson(method.input, json);
  const abort = new AbortController();
  try {
    if (method.methodKind === "server_streaming") {
      const stream = fn.call(service, request, { signal: abort.signal }) as AsyncIterable<unknown>;
      for await (const _ of stream) return "ok";
      return "ended";
    }
    await (fn.call(service, request, { timeoutMs: 10_000 }) as Promise<unknown>);
    return "ok";
  } catch (error) {
    return connectCodeName(ConnectError.from(error).code);
  } finally {
    abort.abort();
  }
}

/** Calls a REST binding: path fields from the request, the rest in the body or the query. */
async function callRest(
  env: TestEnv,
  binding: RestBinding,
  json: JsonObject,
  token: string | undefined,
): Promise<{ code: string; detail: string }> {
  const rest: JsonObject = { ...json };
  const path = binding.template.segments
    .map((segment) => {
      if (segment.kind === "literal") return segment.value;
      const value = rest[segment.path];
      delete rest[segment.path];
      return encodeURIComponent(String(value));
    })
    .join("/");
  let query = "";
  let body: string | undefined;
  if (binding.body === "*") body = JSON.stringify(rest);
  else {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(rest)) for (const item of Array.isArray(v) ? v : [v]) params.append(k, String(item as JsonValue));
    query = params.size === 0 ? "" : `?${params.toString()}`;
  }
  const reply = await httpCall(env.url, binding.httpMethod, `/${path}${query}`, {
    token,
    body,
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    firstLine: binding.method.methodKind === "server_streaming",
    timeoutMs: 10_000,
  });
  const detail = `HTTP ${reply.status} ${reply.text.slice(0, 160)}`;
  if (reply.status === 200) return { code: "ok", detail };
  const code = String(reply.json?.code ?? "?");
  const expectedStatus = (statusOf as Record<string, number | undefined>)[code];
  return { code: expectedStatus === reply.status ? code : `${code}/HTTP ${reply.status}`, detail };
}

/** The services and methods the service's router serves: a router registered exactly as the service registers it. */
function served(env: TestEnv): { services: DescService[]; methods: DescMethod[] } {
  const router = createConnectRouter();
  routesOf(apiServices({ deps: env.service.deps, callers: new Callers(env.service.deps), watch: env.service.watch }))(router);
  const services = new Map<string, DescService>();
  for (const handler of router.handlers) services.set(handler.service.typeName, handler.service);
  return { services: [...services.values()], methods: router.handlers.map((handler) => handler.method) };
}

describe.each(backends)("authorization matrix (%s)", (backend) => {
  const env = useService(backend, { live: { heartbeatMs: 500 }, agentVia: "grpc" });
  let cast: Cast;
  let methods: DescMethod[] = [];
  let bindings: RestBinding[] = [];
  const printed: string[] = [];

  /** Two new customers and their agents, so that a row's snapshots hold only that row's data. */
  async function newCast(): Promise<Cast> {
    const customer = randomUUID();
    const other = randomUUID();
    return {
      customer,
      participant: await env.agent(customer, "Pat"),
      outsider: await env.agent(customer, "Otto"),
      admin: await env.agent(customer, "Ada", { role: "admin" }),
      foreign: await env.agent(other, "Fred"),
      foreignAdmin: await env.agent(other, "Fran", { role: "admin" }),
      other: await env.agent(customer, "Other"),
      third: await env.agent(customer, "Third"),
    };
  }

  beforeAll(async () => {
    cast = await newCast();
    const router = served(env);
    methods = router.methods;
    bindings = restBindings(router.services);
  }, 60_000);

  it("has a row for every RPC the router serves and exactly the expected REST bindings", () => {
    expect(methods.length).toBeGreaterThan(0);
    const missing = methods.map(rowKey).filter((key) => matrix[key] === undefined);
    expect(missing, "served RPCs without a matrix row: classify them").toEqual([]);
    expect(new Set(Object.keys(matrix))).toEqual(new Set(methods.map(rowKey)));
    expect(new Set(bindings.map(bindingKey))).toEqual(new Set(expectedBindings));
    expect(bindings.length).toBe(expectedBindings.length);
  });

  const tokenOf = (cast: Cast, caller: Caller): string | undefined => (caller === "anonymous" ? undefined : cast[caller].token);
  const expectedOf = (method: DescMethod, caller: Caller): Outcome => {
    if (caller === "anonymous") return "unauthenticated";
    return must(matrix[rowKey(method)], `a matrix row for ${rowKey(method)}`).who[caller];
  };

  /**
   * Runs the row's cells one after another (nothing else writes meanwhile) with a cast of its
   * own, each between two snapshots of every table (the tables with a customer_id hold the
   * cast's two customers' rows only): a refused call must change nothing, an allowed one must
   * have its effect and touch no other customer's rows. Refused callers share a scene (a
   * snapshot per call shows any write) and run first, on state no allowed call has touched;
   * each allowed call gets a scene of its own.
   */
  async function runRow(
    label: string,
    method: DescMethod,
    call: (caller: Caller, s: Scene, cast: Cast) => Promise<{ code: string; detail: string }>,
  ): Promise<string[]> {
    const spec = must(matrix[rowKey(method)], `a matrix row for ${rowKey(method)}`);
    const cast = await newCast();
    const customers = [cast.customer, cast.foreign.customerId];
    const failures: string[] = [];
    const cells = new Map<Caller, string>();
    let shared: Scene | undefined;
    const order = [...callers].sort((a, b) => Number(expectedOf(method, a) === "ok") - Number(expectedOf(method, b) === "ok"));
    for (const caller of order) {
      const expected = expectedOf(method, caller);
      const s = expected === "ok" ? await scene(cast, method) : (shared ??= await scene(cast, method));
      const before = await env.snapshot(customers);
      const { code, detail } = await call(caller, s, cast);
      const after = await env.snapshot(customers);
      const changes = snapshotChanges(before, after);
      let mark = code === expected ? "" : "!";
      if (code !== expected) failures.push(`${label} as ${caller}: expected ${expected}, got ${code} (${detail})`);
      if (expected !== "ok" && changes.size > 0) {
        mark = "!";
        failures.push(`${label} as ${caller}: refused with ${code} but the tables changed: ${describeChanges(changes)}`);
      }
      if (expected === "ok" && code === "ok" && caller !== "anonymous") {
        const agent = cast[caller];
        const wrong = spec.effect({ changes, after, s, caller: agent });
        const elsewhere = [...changes.values()]
          .flatMap((diff) => [...diff.added, ...diff.removed, ...diff.changed.map((c) => c.after)])
          .filter((row) => row["customer_id"] !== undefined && row["customer_id"] !== agent.customerId);
        if (wrong !== undefined) failures.push(`${label} as ${caller}: ${wrong}`);
        if (elsewhere.length > 0)
          failures.push(`${label} as ${caller}: changed another customer's rows: ${JSON.stringify(elsewhere).slice(0, 500)}`);
        if (wrong !== undefined || elsewhere.length > 0) mark = "!";
      }
      cells.set(caller, `${code}${mark}`);
    }
    printed.push(`${label.padEnd(72)} ${callers.map((c) => (cells.get(c) ?? "").padEnd(18)).join("")}`);
    return failures;
  }

  for (const via of ["grpc", "connect"] as readonly Via[]) {
    it(`every RPC over ${via}`, async () => {
      const failures: string[] = [];
      for (const method of methods) {
        failures.push(
          ...(await runRow(`${via} ${rowKey(method)}`, method, async (caller, s, cast) => {
            const clients = env.clients(tokenOf(cast, caller), via);
            const code = await callRpc(clients, method, requestOf(method, s));
            return { code, detail: "" };
          })),
        );
      }
      expect(failures).toEqual([]);
    }, 240_000);
  }

  it("every REST binding", async () => {
    const failures: string[] = [];
    for (const binding of bindings) {
      failures.push(
        ...(await runRow(`REST ${bindingKey(binding)}`, binding.method, (caller, s, cast) =>
          callRest(env, binding, requestOf(binding.method, s), tokenOf(cast, caller)),
        )),
      );
    }
    expect(failures).toEqual([]);
  }, 360_000);

  it("prints the matrix", () => {
    console.log(
      `${backend}\n${"call".padEnd(72)} ${callers.map((c) => c.padEnd(18)).join("")}\n${[...printed].sort().join("\n")}\n(! marks a cell that differs from the expected code or effect)`,
    );
    expect(printed.filter((line) => line.includes("!"))).toEqual([]);
  });

  it("lists show nothing of talks and agents the caller may not see", async () => {
    const s = await scene(cast, undefined);
    for (const caller of ["outsider", "admin", "foreign", "foreignAdmin"] as const) {
      const talks = await cast[caller].talks.listTalks({ pageSize: 200 });
      expect(talks.result.map((t) => t.id)).not.toContain(s.talkId);
    }
    for (const caller of ["foreign", "foreignAdmin"] as const) {
      const agents = await cast[caller].agents.listAgents({ pageSize: 200 });
      expect(agents.result.map((a) => a.id)).not.toContain(s.other.id);
      expect(agents.result.every((a) => a.customerId === cast.foreign.customerId)).toBe(true);
    }
  });

  it("a WebSocket subscription to a talk the caller does not take part in gets an error frame and none of its events", async () => {
    const s = await scene(cast, undefined);
    const wsUrl = (token: string) => `ws://127.0.0.1:${env.service.port}/v1.0/ws?token=${encodeURIComponent(token)}`;
    const sockets: WsClient[] = [];
    try {
      const member = new WsClient(wsUrl(cast.participant.token));
      sockets.push(member);
      await member.opened;
      const memberTopic = `agent_id:${cast.participant.id}:talk_chat:${s.talkId}`;
      member.send({ type: "subscribe", topics: [memberTopic] });
      await member.waitFrame((f) => f["type"] === "ack", 0, 20_000);

      const denied = ["outsider", "admin", "foreign", "foreignAdmin"] as const;
      const watchers = new Map<(typeof denied)[number], { client: WsClient; own: string }>();
      for (const caller of denied) {
        const agent = cast[caller];
        const client = new WsClient(wsUrl(agent.token));
        sockets.push(client);
        await client.opened;
        const refused = [
          `agent_id:${agent.id}:talk_chat:${s.talkId}`,
          memberTopic,
          `customer_id:${cast.customer}:talk_chat:${s.talkId}`,
          `customer_id:${agent.customerId}:talk_chat:${s.talkId}`,
        ];
        const everything = `agent_id:${agent.id}:talk_chat:*`;
        client.send({ type: "subscribe", topics: [...refused, everything] });
        const ack = await client.waitFrame((f) => f["type"] === "ack", 0, 20_000);
        expect(ack["topics"], `${caller}: only its own * topic is acknowledged`).toEqual([everything]);
        for (const topic of refused) {
          const error = client.frames.find((f) => f["type"] === "error" && f["topic"] === topic);
          expect(error, `${caller}: an error frame for ${topic}`).toBeDefined();
          expect(["not_found", "permission_denied"], `${caller} on ${topic}: ${JSON.stringify(error)}`).toContain(error?.["code"]);
        }
        // A talk of its own: its event is the sign that everything published before it arrived.
        const own = must((await agent.talks.createTalk({ type: "group", participantIds: [] })).talk).id;
        await client.waitFrame((f) => f["seq"] !== undefined && JSON.stringify(f).includes(own), 0, 20_000);
        watchers.set(caller, { client, own });
      }

      await cast.participant.messages.sendMessage({ chatId: s.talkId, text: "for members only" });
      await member.waitFrame((f) => f["seq"] !== undefined && JSON.stringify(f).includes("for members only"), 0, 20_000);
      for (const [caller, { client, own }] of watchers) {
        const from = client.frames.length;
        await agentSends(cast[caller], own);
        await client.waitFrame((f) => f["seq"] !== undefined && JSON.stringify(f).includes(`marker ${own}`), from, 20_000);
        const leaked = client.frames.filter((f) => f["type"] !== "error" && JSON.stringify(f).includes(s.talkId));
        expect(leaked, `${caller} got frames of a talk it is not in`).toEqual([]);
      }
    } finally {
      for (const socket of sockets) socket.close();
    }
  }, 120_000);

  it("the operator endpoints: /healthz and /readyz answer without a token, /metrics only on the operator listener", async () => {
    for (const path of ["/healthz", "/readyz"]) {
      const reply = await httpCall(env.url, "GET", path);
      expect(reply.status, `${path} on the public port`).toBe(200);
    }
    expect((await httpCall(env.url, "GET", "/metrics")).status).toBe(404);
    const operatorUrl = must(env.service.operatorUrl, "the operator listener");
    for (const path of ["/healthz", "/readyz"])
      expect((await httpCall(operatorUrl, "GET", path)).status, `${path} on the operator port`).toBe(200);
    const metrics = await httpCall(operatorUrl, "GET", "/metrics");
    expect(metrics.status).toBe(200);
    expect(metrics.text).toContain("# TYPE");
    // A token opens nothing more on the public port.
    expect((await httpCall(env.url, "GET", "/metrics", { token: cast.admin.token })).status).toBe(404);
  });
});

/** Sends a marker message into the agent's own talk. */
async function agentSends(agent: TestAgent, talkId: string): Promise<void> {
  await agent.messages.sendMessage({ chatId: talkId, text: `marker ${talkId}` });
}
