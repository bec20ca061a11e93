/**
 * Hostile keys: request data that names `__proto__`, `constructor` or `prototype` (REST query
 * keys, path values, JSON bodies, token claims, page tokens, cursors, WebSocket frames) is
 * refused or ignored, never written onto a shared prototype. The service runs in this process,
 * so Object.prototype itself is checked after every request.
 */
import { randomUUID } from "node:crypto";
import fc from "fast-check";
import { SignJWT } from "jose";
import { afterEach, describe, expect, it } from "vitest";
import { createVerifier } from "../../src/auth/verifier.js";
import { restBindings, type RestBinding } from "../../src/http/rest/bindings.js";
import { fieldPath } from "../../src/http/rest/field-path.js";
import { matchPathTemplate, parsePathTemplate } from "../../src/http/rest/path-template.js";
import { backends, Code, createTalk, expectCode, newCustomer, useService, type TestAgent } from "../support/harness.js";
import { WsClient } from "../support/live-helpers.js";
import { apiServices, httpCall, type HttpReply } from "../support/security-helpers.js";

/** Object.prototype's own keys before any request, to see anything written onto it. */
const cleanKeys = Reflect.ownKeys(Object.prototype).map(String).sort();
const probes = ["role", "name", "admin", "x", "customer_id", "exp", "type", "topics"] as const;

function prototypeWrites(): string[] {
  const now = Reflect.ownKeys(Object.prototype).map(String).sort();
  const added = now.filter((key) => !cleanKeys.includes(key));
  const inherited = probes.filter((key) => (({}) as Record<string, unknown>)[key] !== undefined);
  return [...new Set([...added, ...inherited])];
}

/** Removes whatever a failing run wrote, so that one failure does not poison the other tests. */
function scrubPrototype(): void {
  for (const key of Reflect.ownKeys(Object.prototype)) {
    if (!cleanKeys.includes(String(key))) Reflect.deleteProperty(Object.prototype, key);
  }
}

afterEach(() => scrubPrototype());

const reserved = ["__proto__", "constructor", "prototype"] as const;

/** A JSON text written key by key, so that "__proto__" stays an ordinary own key on the wire. */
type Tree =
  | { readonly kind: "leaf"; readonly value: string | number | boolean | null }
  | { readonly kind: "object"; readonly entries: readonly (readonly [string, Tree])[] };

function jsonText(tree: Tree): string {
  if (tree.kind === "leaf") return JSON.stringify(tree.value);
  return `{${tree.entries.map(([key, value]) => `${JSON.stringify(key)}:${jsonText(value)}`).join(",")}}`;
}

function hasReservedKey(tree: Tree): boolean {
  return (
    tree.kind === "object" && tree.entries.some(([key, value]) => (reserved as readonly string[]).includes(key) || hasReservedKey(value))
  );
}

function expectClientError(reply: HttpReply, what: string): void {
  expect(reply.status, `${what} -> HTTP ${reply.status} ${reply.text.slice(0, 200)}`).toBeGreaterThanOrEqual(400);
  expect(reply.status, `${what} -> HTTP ${reply.status} ${reply.text.slice(0, 200)}`).toBeLessThan(500);
  expect(reply.headers.get("content-type") ?? "", what).toContain("application/json");
  expect(typeof reply.json?.code, `${what} -> ${reply.text.slice(0, 200)}`).toBe("string");
  expect(reply.json.code, what).not.toBe("internal");
}

describe("claims are read as own properties", () => {
  const secret = "a-test-secret-of-enough-length-0123456789";
  const verify = createVerifier({ secret, jwksUrl: undefined, issuer: undefined, audience: undefined });

  async function signed(payload: Record<string, unknown>): Promise<string> {
    return new SignJWT(payload)
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setIssuedAt()
      .setExpirationTime("1h")
      .sign(new TextEncoder().encode(secret));
  }

  it("a polluted Object.prototype supplies no role and no name", async () => {
    const token = await signed({ sub: randomUUID(), customer_id: randomUUID() });
    Object.defineProperty(Object.prototype, "role", { value: "admin", configurable: true, writable: true });
    Object.defineProperty(Object.prototype, "name", { value: "Mallory", configurable: true, writable: true });
    try {
      const identity = await verify(token);
      expect(identity.role).toBe("agent");
      expect(identity.name).toBeUndefined();
    } finally {
      scrubPrototype();
    }
  });

  it('an own "__proto__" claim is only a claim', async () => {
    const payload = JSON.parse(`{"sub":"${randomUUID()}","customer_id":"${randomUUID()}","__proto__":{"role":"admin"}}`) as Record<
      string,
      unknown
    >;
    const identity = await verify(await signed(payload));
    expect(identity.role).toBe("agent");
    expect(prototypeWrites()).toEqual([]);
  });
});

describe("REST request parsing", () => {
  it("a rest-of-path field with a segment that does not decode matches nothing", () => {
    const template = parsePathTemplate("/v1/files/{name=**}");
    expect(matchPathTemplate(template, "/v1/files/a/%E0%A4%A")).toBeNull();
    expect(matchPathTemplate(template, "/v1/files/a/b%20c")?.get("name")).toBe("a/b c");
  });

  it("every binding's path fields and body name fields of its request", () => {
    for (const binding of restBindings([...apiServices])) {
      for (const segment of binding.template.segments) {
        if (segment.kind === "field") expect(fieldPath(binding.method.input, segment.path), binding.template.source).toBeDefined();
      }
    }
  });
});

describe.each(backends)("hostile keys on %s", (backend) => {
  // What the service would log at error level: no hostile request may end up there.
  const unexpected: string[] = [];
  const env = useService(backend, { onError: (error, where) => unexpected.push(`${where}: ${String(error)}`) });
  afterEach(() => expect(unexpected.splice(0)).toEqual([]));
  const url = (): string => env.service.url;
  const call = (method: string, path: string, token?: string, body?: string): Promise<HttpReply> =>
    httpCall(url(), method, path, {
      token,
      body,
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      timeoutMs: 10_000,
    });

  /** The process answers an ordinary call of `agent`, and a no-role token is still no admin. */
  async function expectUnharmed(agent: TestAgent): Promise<void> {
    expect(prototypeWrites()).toEqual([]);
    const listed = await call("GET", "/v1.0/talks?page_size=5", agent.token);
    expect(listed.status, listed.text).toBe(200);
    await expectCode(agent.agents.createAgent({ name: "Intruder" }), Code.PermissionDenied);
    expect((await agent.talks.listTalks({})).result).toEqual(expect.any(Array));
  }

  it("the reported request is refused before authentication and writes nothing onto Object.prototype", async () => {
    const agent = await env.agent(newCustomer(), "Ann");
    const reply = await call("GET", "/v1.0/talks?page_size.__proto__.role=admin");
    expect(reply.status, reply.text).toBe(400);
    expect(reply.json).toMatchObject({ code: "invalid_argument" });
    expect(reply.json.message).toContain("page_size.__proto__.role");
    expect(({} as Record<string, unknown>)["role"]).toBeUndefined();
    await expectUnharmed(agent);
    // The same through the other spellings, with a token this time.
    for (const query of [
      "__proto__.role=admin",
      "constructor.prototype.role=admin",
      "page_size.constructor.prototype.role=admin",
      "__proto__[role]=admin",
    ]) {
      const again = await call("GET", `/v1.0/talks?${query}`, agent.token);
      expect(again.status, `${query}: ${again.text}`).toBe(400);
      expect(again.json.message, query).toContain(query.split("=")[0]);
    }
    await expectUnharmed(agent);
  });

  it("a dotted query key must follow the request message's fields", async () => {
    const agent = await env.agent(newCustomer(), "Ann");
    const reply = await call("GET", "/v1.0/talks?page_size.role=admin", agent.token);
    expect(reply.status, reply.text).toBe(400);
    expect(reply.json.message).toContain("page_size.role");
    // A key that names no field at all is still ignored (cache busters, the token).
    expect((await call("GET", "/v1.0/talks?_=1&page_size=2", agent.token)).status).toBe(200);
  });

  it("JSON bodies with reserved keys are refused, naming the key", async () => {
    const customer = newCustomer();
    const admin = await env.agent(customer, "Ada", { role: "admin" });
    const agent = await env.agent(customer, "Ann");
    const talk = await createTalk(agent, []);
    const bodies: [string, string, string, string][] = [
      ["POST", "/v1.0/talks", `{"type":"group","__proto__":{"role":"admin"}}`, "__proto__"],
      [
        "POST",
        `/v1.0/talks/${talk.id}/messages`,
        `{"text":"hi","medias":[{"type":"a/b","url":"http://x/y","name":"n","constructor":{"prototype":{"role":"admin"}}}]}`,
        "medias[0].constructor",
      ],
      ["POST", "/v1.0/agents", `{"name":"X","prototype":1}`, "prototype"],
    ];
    for (const [method, path, body, key] of bodies) {
      const reply = await call(method, path, method === "POST" && path === "/v1.0/agents" ? admin.token : agent.token, body);
      expect(reply.status, `${path}: ${reply.text}`).toBe(400);
      expect(reply.json).toMatchObject({ code: "invalid_argument" });
      expect(reply.json.message).toContain(key);
    }
    // A deep body is walked without recursion and refused by the codec, not by the stack.
    const deep = await call(
      "POST",
      `/v1.0/talks/${talk.id}/messages`,
      agent.token,
      `{"text":"hi","medias":${"[".repeat(200_000)}${"]".repeat(200_000)}}`,
    );
    expectClientError(deep, "a body nested 200,000 deep");
    expect((await agent.messages.listMessages({ chatId: talk.id })).result.filter((m) => m.text === "hi")).toEqual([]);
    await expectUnharmed(agent);
  });

  it("Connect JSON bodies with reserved keys write nothing onto Object.prototype", async () => {
    const agent = await env.agent(newCustomer(), "Ann");
    // The Connect codec looks keys up among the message's fields: like every unknown field,
    // these are dropped.
    for (const body of [
      `{"__proto__":{"role":"admin"}}`,
      `{"type":"group","constructor":{"prototype":{"role":"admin"}}}`,
      `{"name":"x","__proto__":null}`,
    ]) {
      const reply = await httpCall(url(), "POST", "/talk.v1.TalkService/CreateTalk", {
        token: agent.token,
        body,
        headers: { "Content-Type": "application/json" },
        timeoutMs: 10_000,
      });
      expect(reply.status, `${body}: ${reply.text}`).toBe(200);
      expect(prototypeWrites(), body).toEqual([]);
    }
    const asAdmin = await httpCall(url(), "POST", "/talk.v1.AgentService/CreateAgent", {
      token: agent.token,
      body: `{"name":"X","__proto__":{"role":"admin"}}`,
      headers: { "Content-Type": "application/json" },
      timeoutMs: 10_000,
    });
    expectClientError(asAdmin, "CreateAgent");
    expect(asAdmin.json.code).toBe("permission_denied");
    await expectUnharmed(agent);
  });

  it("a token with an own __proto__ claim is no admin", async () => {
    const payload = JSON.parse(`{"sub":"${randomUUID()}","customer_id":"${newCustomer()}","__proto__":{"role":"admin"}}`) as Record<
      string,
      unknown
    >;
    const token = await new SignJWT(payload)
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setIssuedAt()
      .setExpirationTime("1h")
      .sign(new TextEncoder().encode(env.secret));
    const { agents } = env.clients(token, "connect");
    await expectCode(agents.createAgent({ name: "Intruder" }), Code.PermissionDenied);
    expect(prototypeWrites()).toEqual([]);
  });

  it("page tokens and cursors with reserved keys are INVALID_ARGUMENT", async () => {
    const agent = await env.agent(newCustomer(), "Ann");
    await createTalk(agent, []);
    const encode = (text: string) => Buffer.from(text).toString("base64url");
    await expectCode(agent.talks.listTalks({ pageToken: encode(`{"__proto__":[1,"x"]}`) }), Code.InvalidArgument, "page_token");
    for (const cursor of [`{"w":0,"s":{"__proto__":1}}`, `{"__proto__":{"w":0,"s":{}}}`, `{"w":0,"s":{"__proto__":{"x":1}}}`]) {
      const stream = agent.talks.watchEvents({ cursor: encode(cursor) }, { signal: AbortSignal.timeout(10_000) });
      await expectCode(
        (async () => {
          for await (const _ of stream) break;
        })(),
        Code.InvalidArgument,
        "cursor",
      );
    }
    await expectUnharmed(agent);
  });

  it("WebSocket frames with reserved keys are refused and subscribe nothing", async () => {
    const agent = await env.agent(newCustomer(), "Ann");
    const ws = new WsClient(`${url().replace(/^http/, "ws")}/v1.0/ws?token=${agent.token}`);
    await ws.opened;
    try {
      ws.send(`{"__proto__":{"type":"subscribe","topics":["events"]}}`);
      ws.send(`{"type":"subscribe","__proto__":{"topics":["events"]}}`);
      const error = await ws.waitFrame((f) => f["type"] === "error");
      expect(error).toMatchObject({ type: "error" });
      await ws.waitFrame((f) => f["type"] === "error", ws.frames.indexOf(error) + 1);
      expect(ws.ofType("ack")).toEqual([]);
      expect(prototypeWrites()).toEqual([]);
    } finally {
      ws.close();
    }
    await expectUnharmed(agent);
  });

  it("every REST binding answers hostile query keys, paths and bodies with a 4xx JSON error", async () => {
    const customer = newCustomer();
    const agent = await env.agent(customer, "Ann");
    const talk = await createTalk(agent, []);
    const bindings: readonly RestBinding[] = restBindings([...apiServices]);
    const word = fc.constantFrom(
      ...reserved,
      "page_size",
      "chat_id",
      "id",
      "name",
      "medias",
      "role",
      "toString",
      "valueOf",
      "hasOwnProperty",
      "__defineSetter__",
      "x",
    );
    const hostileKey = fc
      .tuple(
        fc.array(word, { maxLength: 3 }),
        fc.constantFrom(...reserved),
        fc.array(word, { maxLength: 3 }),
        fc.constantFrom(".", "[", "]"),
      )
      .map(([before, bad, after, joint]) =>
        joint === "."
          ? [...before, bad, ...after].join(".")
          : `${before.join(".")}${before.length > 0 ? "." : ""}${bad}[${after.join("][")}]`,
      );
    const anyKey = fc.oneof(hostileKey, word, fc.constantFrom("page_size", "token", "cursor"));
    const leaf: fc.Arbitrary<Tree> = fc
      .oneof(fc.constantFrom("admin", "", 1, -1, true, null), fc.uuid())
      .map((value) => ({ kind: "leaf", value }));
    const tree: fc.Arbitrary<Tree> = fc.letrec<{ node: Tree }>((tie) => ({
      node: fc.oneof(
        { depthSize: "small", withCrossShrink: true },
        leaf,
        fc
          .array(fc.tuple(fc.oneof(word, fc.string({ maxLength: 6 })), tie("node")), { maxLength: 4 })
          .map((entries): Tree => ({ kind: "object", entries })),
      ),
    })).node;
    const pathValue = fc.oneof(fc.constantFrom(...reserved, talk.id, agent.id, "a.b", "__proto__.role", "%00"), fc.uuid());
    const requestArb = fc.record({
      binding: fc.constantFrom(...bindings),
      values: fc.array(pathValue, { minLength: 3, maxLength: 3 }),
      query: fc.array(fc.tuple(anyKey, fc.constantFrom("admin", "1", "true", "")), { maxLength: 4 }),
      hostileQuery: fc.tuple(hostileKey, fc.constantFrom("admin", "1", "")),
      body: tree,
      hostileIn: fc.constantFrom("query", "body"),
      withToken: fc.boolean(),
    });
    const numRuns = 300;
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(requestArb, async (r) => {
        runs += 1;
        let field = 0;
        const path = r.binding.template.segments
          .map((segment) => (segment.kind === "literal" ? segment.value : encodeURIComponent(r.values[field++ % r.values.length] ?? "")))
          .join("/");
        const bodyAllowed = r.binding.body !== "" && r.binding.httpMethod !== "GET";
        const bodyTree: Tree =
          r.hostileIn === "body" && bodyAllowed && !hasReservedKey(r.body)
            ? {
                kind: "object",
                entries: [
                  [r.hostileQuery[0].split(/[.[\]]/).find((k) => (reserved as readonly string[]).includes(k)) ?? "__proto__", r.body],
                ],
              }
            : r.body;
        const pairs = r.hostileIn === "query" || !bodyAllowed ? [...r.query, r.hostileQuery] : r.query;
        const query = pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join("&");
        const body = bodyAllowed ? jsonText(bodyTree) : undefined;
        const what = `${r.binding.httpMethod} /${path}?${query} ${body ?? ""}`;
        const reply = await call(
          r.binding.httpMethod,
          `/${path}${query === "" ? "" : `?${query}`}`,
          r.withToken ? agent.token : undefined,
          body,
        );
        expectClientError(reply, what);
        expect(prototypeWrites(), what).toEqual([]);
        const alive = await call("GET", "/v1.0/talks?page_size=1", agent.token);
        expect(alive.status, `after ${what}: ${alive.text}`).toBe(200);
      }),
      { numRuns },
    );
    expect(runs).toBe(numRuns);
    await expectUnharmed(agent);
  }, 240_000);
});
