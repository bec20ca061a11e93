/**
 * The authorization matrix: every RPC (gRPC and Connect) and every REST binding, called as a
 * participant, a non-participant of the same customer, an admin of the same customer who does
 * not take part, an agent and an admin of another customer, and without a token. Rows come
 * from the service descriptors, so a new RPC or path without a row fails here.
 */
import { randomUUID } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { fromJson, type DescMethod, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import { ConnectError } from "@connectrpc/connect";
import { restBindings, type RestBinding } from "../src/http/rest/bindings.js";
import { must } from "./harness.js";
import type { Clients, Via } from "./harness.js";
import { apiServices, connectCodeName, httpCall, useSecService, type SecAgent, type SecEnv } from "./security-helpers.js";

const callers = ["participant", "outsider", "admin", "foreign", "foreignAdmin", "anonymous"] as const;
type Caller = (typeof callers)[number];
type Outcome = "ok" | "not_found" | "permission_denied" | "unauthenticated";
type Row = Record<Exclude<Caller, "anonymous">, Outcome>;

const talkRow: Row = { participant: "ok", outsider: "not_found", admin: "not_found", foreign: "not_found", foreignAdmin: "not_found" };
const everyone: Row = { participant: "ok", outsider: "ok", admin: "ok", foreign: "ok", foreignAdmin: "ok" };
const adminOnly: Row = { participant: "permission_denied", outsider: "permission_denied", admin: "ok", foreign: "permission_denied", foreignAdmin: "not_found" };

/** The expected outcome per RPC; without a token every call is unauthenticated. */
const matrix: Record<string, Row> = {
  "TalkService.CreateTalk": { ...everyone, foreign: "not_found", foreignAdmin: "not_found" },
  "TalkService.GetTalk": talkRow,
  "TalkService.ListTalks": everyone,
  "TalkService.UpdateTalk": talkRow,
  "TalkService.CloseTalk": talkRow,
  "TalkService.ReopenTalk": talkRow,
  "TalkService.DeleteTalk": talkRow,
  "TalkService.AddParticipant": talkRow,
  "TalkService.RemoveParticipant": talkRow,
  "TalkService.ListParticipants": talkRow,
  "TalkService.WatchTalk": talkRow,
  "TalkService.WatchEvents": everyone,
  "MessageService.SendMessage": talkRow,
  "MessageService.GetMessage": talkRow,
  "MessageService.ListMessages": talkRow,
  "MessageService.UpdateMessage": talkRow,
  "MessageService.DeleteMessage": talkRow,
  "MessageService.AddReaction": talkRow,
  "MessageService.RemoveReaction": talkRow,
  "AgentService.CreateAgent": { ...adminOnly, foreignAdmin: "ok" },
  "AgentService.GetAgent": { participant: "ok", outsider: "ok", admin: "ok", foreign: "not_found", foreignAdmin: "not_found" },
  "AgentService.ListAgents": everyone,
  "AgentService.UpdateAgent": adminOnly,
  "AgentService.DeleteAgent": adminOnly,
};

/** The REST paths each RPC must have, so that a new or changed binding fails until listed here. */
const expectedBindings = [
  "POST /v1.0/talks", "POST /v1.0/service_agents/talk_chats",
  "GET /v1.0/talks/{id}", "GET /v1.0/service_agents/talk_chats/{id}",
  "GET /v1.0/talks", "GET /v1.0/service_agents/talk_chats",
  "PUT /v1.0/talks/{id}", "PUT /v1.0/service_agents/talk_chats/{id}", "PATCH /v1.0/talks/{id}", "PATCH /v1.0/service_agents/talk_chats/{id}",
  "POST /v1.0/talks/{id}/close", "POST /v1.0/service_agents/talk_chats/{id}/close",
  "POST /v1.0/talks/{id}/reopen", "POST /v1.0/service_agents/talk_chats/{id}/reopen",
  "DELETE /v1.0/talks/{id}", "DELETE /v1.0/service_agents/talk_chats/{id}",
  "POST /v1.0/talks/{chat_id}/participants", "POST /v1.0/service_agents/talk_chats/{chat_id}/participants",
  "DELETE /v1.0/talks/{chat_id}/participants/{participant_id}", "DELETE /v1.0/service_agents/talk_chats/{chat_id}/participants/{participant_id}",
  "GET /v1.0/talks/{chat_id}/participants", "GET /v1.0/service_agents/talk_chats/{chat_id}/participants",
  "GET /v1.0/talks/{chat_id}/events", "GET /v1.0/service_agents/talk_chats/{chat_id}/events",
  "GET /v1.0/events", "GET /v1.0/service_agents/events",
  "POST /v1.0/talks/{chat_id}/messages", "POST /v1.0/service_agents/talk_messages",
  "GET /v1.0/messages/{id}", "GET /v1.0/service_agents/talk_messages/{id}",
  "GET /v1.0/talks/{chat_id}/messages", "GET /v1.0/service_agents/talk_messages",
  "PUT /v1.0/messages/{id}", "PUT /v1.0/service_agents/talk_messages/{id}", "PATCH /v1.0/messages/{id}", "PATCH /v1.0/service_agents/talk_messages/{id}",
  "DELETE /v1.0/messages/{id}", "DELETE /v1.0/service_agents/talk_messages/{id}",
  "POST /v1.0/messages/{message_id}/reactions", "POST /v1.0/service_agents/talk_messages/{message_id}/reactions",
  "DELETE /v1.0/messages/{message_id}/reactions/{emoji}", "DELETE /v1.0/service_agents/talk_messages/{message_id}/reactions/{emoji}",
  "DELETE /v1.0/messages/{message_id}/reactions", "DELETE /v1.0/service_agents/talk_messages/{message_id}/reactions",
  "POST /v1.0/agents", "GET /v1.0/agents/{id}", "GET /v1.0/agents", "PUT /v1.0/agents/{id}", "PATCH /v1.0/agents/{id}", "DELETE /v1.0/agents/{id}",
];

const methods: readonly DescMethod[] = apiServices.flatMap((s) => s.methods);
const rowKey = (method: DescMethod) => `${method.parent.name}.${method.name}`;
const bindings: readonly RestBinding[] = restBindings([...apiServices]);
const bindingKey = (b: RestBinding) => `${b.httpMethod} ${b.template.source}`;

const statusOf: Record<Outcome, number> = { ok: 200, not_found: 404, permission_denied: 403, unauthenticated: 401 };

interface Cast {
  readonly customer: string;
  readonly participant: SecAgent;
  readonly outsider: SecAgent;
  readonly admin: SecAgent;
  readonly foreign: SecAgent;
  readonly foreignAdmin: SecAgent;
}

/** What one cell acts on: a fresh talk (group: participant + other), a message, the other's membership. */
interface Scene {
  readonly talkId: string;
  readonly messageId: string;
  readonly other: SecAgent;
  readonly otherParticipantId: string;
  readonly third: SecAgent;
}

async function scene(env: SecEnv, cast: Cast, method: DescMethod): Promise<Scene> {
  const other = await env.agent(cast.customer, "Other");
  const third = await env.agent(cast.customer, "Third");
  const talk = must((await cast.participant.talks.createTalk({ type: "group", participantIds: [other.id] })).talk);
  const message = must((await cast.participant.messages.sendMessage({ chatId: talk.id, text: "hi" })).message);
  await cast.participant.messages.addReaction({ messageId: message.id, emoji: "thumbsup" });
  const participants = (await cast.participant.talks.listParticipants({ chatId: talk.id })).result;
  if (method.name === "ReopenTalk") await cast.participant.talks.closeTalk({ id: talk.id });
  return { talkId: talk.id, messageId: message.id, other, third, otherParticipantId: must(participants.find((p) => p.ownerId === other.id)).id };
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
  const service = method.parent.name === "TalkService" ? clients.talks : method.parent.name === "MessageService" ? clients.messages : clients.agents;
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
async function callRest(env: SecEnv, binding: RestBinding, json: JsonObject, token: string | undefined): Promise<{ code: string; detail: string }> {
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

/** Runs rows a few at a time (rows never share a scene), results in order. */
async function inBatches<T, R>(items: readonly T[], run: (item: T) => Promise<R>, size = 6): Promise<R[]> {
  const results: R[] = [];
  for (let i = 0; i < items.length; i += size) results.push(...(await Promise.all(items.slice(i, i + size).map(run))));
  return results;
}

describe("authorization matrix (pglite)", () => {
  const env = useSecService({ live: { heartbeatMs: 500 } });
  let cast: Cast;
  const printed: string[] = [];

  beforeAll(async () => {
    const customer = randomUUID();
    const other = randomUUID();
    cast = {
      customer,
      participant: await env.agent(customer, "Pat"),
      outsider: await env.agent(customer, "Otto"),
      admin: await env.agent(customer, "Ada", { role: "admin" }),
      foreign: await env.agent(other, "Fred"),
      foreignAdmin: await env.agent(other, "Fran", { role: "admin" }),
    };
  }, 60_000);

  it("has a row for every RPC and exactly the expected REST bindings", () => {
    expect(new Set(Object.keys(matrix))).toEqual(new Set(methods.map(rowKey)));
    expect(new Set(bindings.map(bindingKey))).toEqual(new Set(expectedBindings));
    expect(bindings.length).toBe(expectedBindings.length);
  });

  const tokenOf = (caller: Caller): string | undefined => (caller === "anonymous" ? undefined : cast[caller].token);
  const expectedOf = (method: DescMethod, caller: Caller): Outcome => (caller === "anonymous" ? "unauthenticated" : must(matrix[rowKey(method)])[caller]);

  /** Runs the row's cells; the successful ones last and each on its own scene, so nothing they change leaks into another cell. */
  async function runRow(label: string, method: DescMethod, call: (caller: Caller, s: Scene) => Promise<{ code: string; detail: string }>): Promise<string[]> {
    const failures: string[] = [];
    const cells: string[] = [];
    const order = [...callers].sort((a, b) => Number(expectedOf(method, a) === "ok") - Number(expectedOf(method, b) === "ok"));
    let shared: Scene | undefined;
    const observed = new Map<Caller, string>();
    for (const caller of order) {
      const expected = expectedOf(method, caller);
      const s = expected === "ok" || shared === undefined ? await scene(env, cast, method) : shared;
      if (expected !== "ok") shared = s;
      const { code, detail } = await call(caller, s);
      observed.set(caller, code);
      if (code !== expected) failures.push(`${label} as ${caller}: expected ${expected}, got ${code} (${detail})`);
    }
    for (const caller of callers) cells.push(observed.get(caller) === expectedOf(method, caller) ? String(observed.get(caller)) : `${String(observed.get(caller))}!`);
    printed.push(`${label.padEnd(72)} ${cells.map((c) => c.padEnd(18)).join("")}`);
    return failures;
  }

  for (const via of ["grpc", "connect"] as readonly Via[]) {
    it(`every RPC over ${via}`, async () => {
      const rows = await inBatches(methods, (method) =>
        runRow(`${via} ${rowKey(method)}`, method, async (caller, s) => {
          const clients = env.clients(tokenOf(caller), via);
          const code = await callRpc(clients, method, requestOf(method, s));
          return { code, detail: "" };
        }),
      );
      expect(rows.flat()).toEqual([]);
    }, 120_000);
  }

  it("every REST binding", async () => {
    const failures: string[] = [];
    for (const binding of bindings) {
      failures.push(
        ...(await runRow(`REST ${bindingKey(binding)}`, binding.method, (caller, s) =>
          callRest(env, binding, requestOf(binding.method, s), tokenOf(caller)),
        )),
      );
    }
    expect(failures).toEqual([]);
  }, 180_000);

  it("prints the matrix", () => {
    console.log(`${"call".padEnd(72)} ${callers.map((c) => c.padEnd(18)).join("")}\n${[...printed].sort().join("\n")}\n(! marks a cell that differs from the expected code)`);
    expect(printed.filter((line) => line.includes("!"))).toEqual([]);
  });

  it("lists show nothing of talks and agents the caller may not see", async () => {
    const s = await scene(env, cast, methods[0] as DescMethod);
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
});
