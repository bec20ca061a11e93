/**
 * Property-based robustness tests: random and mutated requests at every RPC over Connect JSON,
 * Connect binary protobuf, raw gRPC, and the REST paths. Properties: the process keeps
 * answering, a client's mistake never comes back as INTERNAL / HTTP 5xx, and a request that
 * failed wrote nothing.
 */
import { randomUUID } from "node:crypto";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { create, fromJson, toBinary, ScalarType, type DescField, type DescMessage, type DescMethod, type JsonValue } from "@bufbuild/protobuf";
import { SendMessageRequestSchema } from "../gen/talk/v1/message_service_pb.js";
import { ConnectError } from "@connectrpc/connect";
import { backends, Code, expectCode, must } from "./harness.js";
import {
  apiServices,
  clientErrorCodes,
  clientErrorStatuses,
  connectRaw,
  grpcRaw,
  httpCall,
  SecEnv,
  useSecService,
  type HttpReply,
  type RowCounts,
  type SecAgent,
} from "./security-helpers.js";

interface Rpc {
  readonly procedure: string;
  readonly method: DescMethod;
}

const rpcs: readonly Rpc[] = apiServices.flatMap((service) =>
  service.methods.map((method) => ({ procedure: `${service.typeName}/${method.name}`, method })),
);

const sqlText = "'); DROP TABLE messages; --";
const htmlText = "<script>alert(1)</script>";
/** gRPC status codes that mean a bug, never a client's mistake: UNKNOWN, INTERNAL, DATA_LOSS. */
const serverFaultGrpc = new Set([2, 13, 15]);

interface Fixture {
  readonly customer: string;
  readonly ann: SecAgent;
  readonly bob: SecAgent;
  readonly admin: SecAgent;
  /** Checks that the service answers; never a caller or a target of the fuzz, which may delete the others. */
  readonly observer: SecAgent;
  readonly talkId: string;
  readonly messageId: string;
  readonly bobParticipantId: string;
  readonly ids: readonly string[];
}

async function fixture(env: SecEnv): Promise<Fixture> {
  const customer = randomUUID();
  const ann = await env.agent(customer, "Ann");
  const bob = await env.agent(customer, "Bob");
  const admin = await env.agent(customer, "Ada", { role: "admin" });
  const observer = await env.agent(customer, "Olive");
  const talk = must((await ann.talks.createTalk({ type: "group", participantIds: [bob.id] })).talk);
  const message = must((await ann.messages.sendMessage({ chatId: talk.id, text: "hello" })).message);
  const participants = (await ann.talks.listParticipants({ chatId: talk.id })).result;
  const bobParticipantId = must(participants.find((p) => p.ownerId === bob.id)).id;
  return {
    customer,
    ann,
    bob,
    admin,
    observer,
    talkId: talk.id,
    messageId: message.id,
    bobParticipantId,
    ids: [talk.id, message.id, ann.id, bob.id, admin.id, bobParticipantId, talk.id.toUpperCase()],
  };
}

// ---- arbitraries -------------------------------------------------------------------------

const nastyStrings = [
  "",
  " ",
  "not-a-uuid",
  "00000000-0000-0000-0000-00000000000g",
  "00000000-0000-0000-0000-0000000000000",
  "{00000000-0000-0000-0000-000000000000}",
  "' OR 1=1 --",
  sqlText,
  htmlText,
  "\u0000",
  "a\u0000b",
  "%00",
  "%",
  "../../etc/passwd",
  "\ud800",
  "\udfff\ud800",
  "😀".repeat(3),
  "normal",
  "group",
  "agent",
  "admin",
  "system",
  "thumbsup",
  "application/pdf",
  "javascript:alert(1)",
  "http://127.0.0.1/x",
  "9223372036854775807",
  "-1",
];

function stringArb(ids: readonly string[]): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...ids) },
    { weight: 1, arbitrary: fc.uuid() },
    { weight: 3, arbitrary: fc.constantFrom(...nastyStrings) },
    { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 60 }) },
    { weight: 1, arbitrary: fc.string({ unit: "grapheme", maxLength: 30 }) },
  );
}

const int32Arb = fc.oneof(fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }), fc.constantFrom(0, 1, -1, 200, 201, 2 ** 31 - 1, -(2 ** 31)));
const int64Arb = fc.oneof(
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map((n) => n.toString()),
  fc.constantFrom("0", "1", "-1", "9223372036854775807", "9007199254740993", "4294967296"),
);

/** A JSON value of the field's own type (so the request decodes). */
function typedValue(field: DescField, ids: readonly string[]): fc.Arbitrary<JsonValue> {
  const scalar = (type: ScalarType | undefined): fc.Arbitrary<JsonValue> => {
    switch (type) {
      case ScalarType.INT32:
      case ScalarType.UINT32:
      case ScalarType.SINT32:
        return int32Arb;
      case ScalarType.INT64:
      case ScalarType.SINT64:
      case ScalarType.UINT64:
        return int64Arb;
      case ScalarType.BOOL:
        return fc.boolean();
      default:
        return stringArb(ids);
    }
  };
  const message = (desc: DescMessage | undefined): fc.Arbitrary<JsonValue> => {
    if (desc === undefined) return fc.constant({});
    const model: Record<string, fc.Arbitrary<JsonValue>> = {};
    for (const f of desc.fields) if (f.fieldKind === "scalar") model[f.name] = scalar(f.scalar);
    return fc.record(model, { requiredKeys: [] }) as fc.Arbitrary<JsonValue>;
  };
  switch (field.fieldKind) {
    case "scalar":
      return scalar(field.scalar);
    case "list":
      return fc.array(field.listKind === "message" ? message(field.message) : scalar(field.scalar), { maxLength: 12 });
    case "message":
      return message(field.message);
    default:
      return fc.constant(null);
  }
}

/** Any JSON value: wrong types, nesting, big numbers. */
const wildValue: fc.Arbitrary<JsonValue> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<JsonValue>,
  fc.constantFrom<JsonValue>(null, true, 1e308, -1.5, 2 ** 53 + 2, "NaN", "Infinity", [], {}, [[["x"]]], { a: { b: {} } }),
);

/** A request object shaped like the method's input: known field names, typed or wild values, extras. */
function requestJsonArb(method: DescMethod, ids: readonly string[], typedOnly: boolean): fc.Arbitrary<Record<string, JsonValue>> {
  const model: Record<string, fc.Arbitrary<JsonValue>> = {};
  for (const field of method.input.fields) {
    const typed = typedValue(field, ids);
    model[typedOnly || field.jsonName === field.name ? field.name : field.jsonName] = typedOnly
      ? typed
      : fc.oneof({ weight: 4, arbitrary: typed }, { weight: 1, arbitrary: wildValue });
  }
  const base = fc.record(model, { requiredKeys: [] }) as fc.Arbitrary<Record<string, JsonValue>>;
  if (typedOnly) return base;
  return fc
    .tuple(base, fc.dictionary(fc.string({ maxLength: 12 }), wildValue, { maxKeys: 3 }))
    .map(([known, extra]) => ({ ...extra, ...known }));
}

const bodyArb = (method: DescMethod, ids: readonly string[]): fc.Arbitrary<string | Uint8Array> =>
  fc.oneof(
    { weight: 6, arbitrary: requestJsonArb(method, ids, false).map((j) => JSON.stringify(j)) },
    { weight: 1, arbitrary: fc.json({ maxDepth: 4 }) },
    { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 80 }) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 120 }) },
    { weight: 1, arbitrary: fc.constantFrom("", "{", "}", "[]", "null", "{}", '{"a":', '{"__proto__":{"x":1}}', '{"constructor":{"prototype":{}}}') },
  );

/** Mutations of a valid protobuf encoding: flip, cut, insert, append a random field. */
type Mutation =
  | { kind: "flip"; at: number; bits: number }
  | { kind: "cut"; at: number }
  | { kind: "insert"; at: number; bytes: Uint8Array }
  | { kind: "append"; bytes: Uint8Array };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), bits: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ kind: fc.constant("cut" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ kind: fc.constant("append" as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
);

function mutate(bytes: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
  let out = Buffer.from(bytes);
  for (const m of mutations) {
    const at = out.length === 0 ? 0 : ("at" in m ? m.at % (out.length + 1) : 0);
    if (m.kind === "flip" && out.length > 0) {
      const i = at % out.length;
      out[i] = (out[i] ?? 0) ^ m.bits;
    } else if (m.kind === "cut") out = out.subarray(0, at);
    else if (m.kind === "insert") out = Buffer.concat([out.subarray(0, at), m.bytes, out.subarray(at)]);
    else if (m.kind === "append") out = Buffer.concat([out, m.bytes]);
  }
  return out;
}

/** A valid encoding of a typed random request, or undefined when the JSON does not decode. */
function encode(method: DescMethod, json: Record<string, JsonValue>): Uint8Array {
  try {
    return toBinary(method.input, fromJson(method.input, json));
  } catch {
    return new Uint8Array();
  }
}

const protoBodyArb = (method: DescMethod, ids: readonly string[]): fc.Arbitrary<Uint8Array> =>
  fc.oneof(
    { weight: 2, arbitrary: fc.uint8Array({ maxLength: 200 }) },
    { weight: 1, arbitrary: requestJsonArb(method, ids, true).map((j) => encode(method, j)) },
    {
      weight: 5,
      arbitrary: fc
        .tuple(requestJsonArb(method, ids, true), fc.array(mutationArb, { minLength: 1, maxLength: 4 }))
        .map(([j, ms]) => mutate(encode(method, j), ms)),
    },
  );

// ---- checks ------------------------------------------------------------------------------

/** Parses Connect streaming envelopes and returns the end-stream error code, if any. */
function endStreamCode(bytes: Buffer): string | undefined {
  let at = 0;
  while (at + 5 <= bytes.length) {
    const flags = bytes.readUInt8(at);
    const length = bytes.readUInt32BE(at + 1);
    const payload = bytes.subarray(at + 5, at + 5 + length);
    if ((flags & 0x02) !== 0) {
      try {
        const end = JSON.parse(payload.toString("utf8")) as { error?: { code?: string } };
        return end.error?.code;
      } catch {
        return "unparsable end-stream";
      }
    }
    at += 5 + length;
  }
  return undefined;
}

function envelope(body: string | Uint8Array): Buffer {
  const payload = typeof body === "string" ? Buffer.from(body) : Buffer.from(body);
  const frame = Buffer.alloc(5 + payload.length);
  frame.writeUInt32BE(payload.length, 1);
  payload.copy(frame, 5);
  return frame;
}

/** A client error: a 4xx (or 501) status whose JSON code, if any, is a client error code. */
function expectClientOutcome(reply: HttpReply, what: string): boolean {
  const detail = `${what} -> HTTP ${reply.status}: ${reply.text.slice(0, 300)}`;
  if (reply.status === 200) return true;
  expect(clientErrorStatuses.has(reply.status), detail).toBe(true);
  const code: unknown = reply.json?.code;
  if (code !== undefined) expect(clientErrorCodes.has(String(code)), detail).toBe(true);
  return false;
}

async function expectAlive(env: SecEnv, fx: Fixture): Promise<void> {
  const health = await httpCall(env.url, "GET", "/healthz", { timeoutMs: 5_000 });
  expect(health.status).toBe(200);
  const talks = await fx.observer.talks.listTalks({}, { timeoutMs: 5_000 });
  expect(talks.result.length).toBeGreaterThanOrEqual(0);
}

function show(body: string | Uint8Array): string {
  return typeof body === "string" ? JSON.stringify(body.slice(0, 200)) : `bytes ${Buffer.from(body).toString("hex").slice(0, 200)}`;
}

/** Percent-encodes any string (lone surrogates become U+FFFD first, as encodeURIComponent requires). */
const uriEncode = (s: string): string => encodeURIComponent(s.toWellFormed());

const restPieces = [
  "talks",
  "messages",
  "agents",
  "events",
  "participants",
  "reactions",
  "close",
  "reopen",
  "service_agents",
  "talk_chats",
  "talk_messages",
  "v1.0",
  "..",
  ".",
  "%",
  "%zz",
  "%2F",
  "%00",
  "%ff",
  "%c3%28",
  "thumbsup",
  ";",
  "~",
  "*",
];

// ---- suites ------------------------------------------------------------------------------

describe.each(backends)("fuzzing on %s", (backend) => {
  const env = useSecService({ backend, live: { heartbeatMs: 300 } });
  // Fewer runs on Postgres: one quick pass.
  const runs = (n: number) => (backend === "pglite" ? n : Math.ceil(n / 4));
  let fx: Fixture;
  let tokens: readonly (string | undefined)[];

  beforeAll(async () => {
    fx = await fixture(env);
    tokens = [fx.ann.token, fx.ann.token, fx.admin.token, fx.bob.token, undefined, "garbage.token.x"];
  });

  it("Connect JSON: random and malformed requests to every RPC", async () => {
    const startedAt = Date.now();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...rpcs).chain((rpc) => fc.tuple(fc.constant(rpc), bodyArb(rpc.method, fx.ids), fc.constantFrom(...tokens))),
        async ([rpc, body, token]) => {
          const before = await env.counts();
          const streaming = rpc.method.methodKind === "server_streaming";
          const reply = streaming
            ? await httpCall(env.url, "POST", `/${rpc.procedure}`, {
                token,
                body: envelope(body),
                headers: { "Content-Type": "application/connect+json" },
                timeoutMs: 600,
              })
            : await connectRaw(env.url, rpc.procedure, body, "application/json", token, 10_000);
          const what = `${rpc.procedure} ${show(body)} token=${token === undefined ? "none" : token.slice(0, 8)}`;
          let failed = !expectClientOutcome(reply, what);
          if (streaming && reply.status === 200) {
            const code = endStreamCode(reply.bytes);
            if (code !== undefined) {
              expect(clientErrorCodes.has(code), `${what} -> end-stream ${code}`).toBe(true);
              failed = true;
            }
          }
          if (failed || streaming) expect(await env.counts(), `${what} wrote rows`).toEqual(before);
        },
      ),
      { numRuns: runs(200), interruptAfterTimeLimit: 15_000 },
    );
    await expectAlive(env, fx);
    console.log(`Connect JSON fuzz on ${backend}: ${Date.now() - startedAt} ms`);
  }, 60_000);

  it("Connect binary protobuf: random bytes and mutated valid encodings to every unary RPC", async () => {
    const unary = rpcs.filter((r) => r.method.methodKind === "unary");
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...unary).chain((rpc) => fc.tuple(fc.constant(rpc), protoBodyArb(rpc.method, fx.ids), fc.constantFrom(...tokens))),
        async ([rpc, body, token]) => {
          const before = await env.counts();
          const reply = await connectRaw(env.url, rpc.procedure, body, "application/proto", token, 10_000);
          const what = `${rpc.procedure} ${show(body)}`;
          const ok = reply.status === 200;
          if (!ok) {
            expect(clientErrorStatuses.has(reply.status), `${what} -> HTTP ${reply.status} ${reply.text.slice(0, 200)}`).toBe(true);
            const code: unknown = reply.json?.code;
            if (code !== undefined) expect(clientErrorCodes.has(String(code)), `${what} -> ${String(code)}`).toBe(true);
            expect(await env.counts(), `${what} wrote rows`).toEqual(before);
          }
        },
      ),
      { numRuns: runs(200), interruptAfterTimeLimit: 12_000 },
    );
    await expectAlive(env, fx);
  }, 60_000);

  it("gRPC: random bytes and mutated valid encodings to every RPC (streams included)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...rpcs).chain((rpc) => fc.tuple(fc.constant(rpc), protoBodyArb(rpc.method, fx.ids), fc.constantFrom(...tokens))),
        async ([rpc, body, token]) => {
          const before = await env.counts();
          const reply = await grpcRaw(env.url, rpc.procedure, body, token, 800);
          const what = `${rpc.procedure} ${show(body)} -> grpc-status ${String(reply.grpcStatus)} ${reply.grpcMessage}`;
          if (reply.grpcStatus !== undefined) expect(serverFaultGrpc.has(reply.grpcStatus), what).toBe(false);
          if (reply.grpcStatus !== 0) {
            if (rpc.method.methodKind === "unary") expect(reply.grpcStatus, `${what}: a unary call must end with a status`).toBeDefined();
            expect(await env.counts(), `${what} wrote rows`).toEqual(before);
          }
        },
      ),
      { numRuns: runs(120), interruptAfterTimeLimit: 12_000 },
    );
    await expectAlive(env, fx);
  }, 60_000);

  it("REST: random methods, paths under /v1.0, queries and bodies", async () => {
    const segment = fc.oneof(
      { weight: 4, arbitrary: fc.constantFrom(...restPieces) },
      { weight: 3, arbitrary: fc.constantFrom(...fx.ids) },
      { weight: 1, arbitrary: fc.uuid() },
      { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 20 }).map(uriEncode) },
      { weight: 1, arbitrary: fc.constantFrom(...nastyStrings).map(uriEncode) },
    );
    const queryArb = fc
      .array(
        fc.tuple(
          fc.constantFrom("page_size", "page_token", "chat_id", "parent_id", "after_seq", "cursor", "emoji", "id", "token", "text", "x.y.z", "medias", "participant_ids"),
          fc.oneof(stringArb(fx.ids), int32Arb.map(String)),
        ),
        { maxLength: 4 },
      )
      .map((pairs) => (pairs.length === 0 ? "" : `?${pairs.map(([k, v]) => `${k}=${uriEncode(v)}`).join("&")}`));
    const requestArb = fc.record({
      method: fc.constantFrom("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"),
      segments: fc.array(segment, { minLength: 1, maxLength: 6 }),
      query: queryArb,
      body: fc.oneof(
        fc.constant(undefined),
        fc.constantFrom(...rpcs).chain((rpc) => bodyArb(rpc.method, fx.ids)),
      ),
      contentType: fc.constantFrom("application/json", "text/plain", "application/proto", "application/x-www-form-urlencoded"),
      token: fc.constantFrom(...tokens),
    });
    await fc.assert(
      fc.asyncProperty(requestArb, async (r) => {
        const before = await env.counts();
        const path = `/v1.0/${r.segments.join("/")}${r.query}`;
        const body = r.method === "GET" || r.method === "HEAD" ? undefined : r.body;
        const what = `${r.method} ${path} ${body === undefined ? "" : show(body)}`;
        const reply = await httpCall(env.url, r.method, path, {
          token: r.token,
          body,
          headers: { "Content-Type": r.contentType },
          timeoutMs: 3_000,
          firstLine: true,
        }).catch((error: unknown) => {
          throw new Error(`${what}: no answer within 3 s (${String(error)})`);
        });
        const ok = reply.status < 300;
        if (!ok) {
          expect(clientErrorStatuses.has(reply.status), `${what} -> HTTP ${reply.status} ${reply.text.slice(0, 200)}`).toBe(true);
          const code: unknown = reply.json?.code;
          if (code !== undefined) expect(clientErrorCodes.has(String(code)), `${what} -> ${String(code)}`).toBe(true);
          expect(await env.counts(), `${what} wrote rows`).toEqual(before);
        }
        // A stream's later line may carry {"error": ...}: never a server fault.
        if (reply.json?.error?.code !== undefined) expect(clientErrorCodes.has(String(reply.json.error.code)), what).toBe(true);
      }),
      { numRuns: runs(200), interruptAfterTimeLimit: 15_000 },
    );
    await expectAlive(env, fx);
  }, 60_000);
});

describe("explicit hostile requests (pglite)", () => {
  const env = useSecService({ live: { heartbeatMs: 300 } });
  let fx: Fixture;
  const send = "talk.v1.MessageService/SendMessage";

  beforeAll(async () => {
    fx = await fixture(env);
  });

  async function unchanged<T>(what: string, action: () => Promise<T>): Promise<T> {
    const before: RowCounts = await env.counts();
    const result = await action();
    expect(await env.counts(), `${what} wrote rows`).toEqual(before);
    return result;
  }

  it("invalid UTF-8 in a JSON body is rejected or replaced, never a server error", async () => {
    const bytes = Buffer.concat([Buffer.from(`{"chat_id":"${fx.talkId}","text":"ok `), Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0xed, 0xa0, 0x80]), Buffer.from('"}')]);
    for (const reply of [
      await connectRaw(env.url, send, bytes, "application/json", fx.ann.token),
      await httpCall(env.url, "POST", `/v1.0/talks/${fx.talkId}/messages`, { token: fx.ann.token, body: bytes, headers: { "Content-Type": "application/json" } }),
    ]) {
      if (reply.status === 200) {
        const text = String(reply.json?.text ?? reply.json?.message?.text);
        // Accepted only with the bad bytes replaced by U+FFFD: the stored text is well-formed.
        expect(text.startsWith("ok ")).toBe(true);
        expect(text).toContain("\ufffd");
        expect(Buffer.from(text, "utf8").toString("utf8")).toBe(text);
        expect(text.isWellFormed()).toBe(true);
      } else {
        expect(reply.status, reply.text).toBe(400);
        expect(reply.json?.code).toBe("invalid_argument");
      }
    }
  });

  it("invalid UTF-8 in a protobuf string field is INVALID_ARGUMENT and writes nothing", async () => {
    const valid = toBinary(SendMessageRequestSchema, create(SendMessageRequestSchema, { chatId: fx.talkId }));
    // Field 3 (text), wire type 2: 0x1a, length 4, bytes that are not UTF-8.
    const body = Buffer.concat([valid, Buffer.from([0x1a, 0x04, 0xff, 0xfe, 0xc3, 0x28])]);
    const reply = await unchanged("binary send", () => connectRaw(env.url, send, body, "application/proto", fx.ann.token));
    expect(reply.status, reply.text).toBe(400);
    expect(reply.json?.code).toBe("invalid_argument");
    const grpc = await unchanged("grpc send", () => grpcRaw(env.url, send, body, fx.ann.token));
    expect(grpc.grpcStatus, grpc.grpcMessage).toBe(Code.InvalidArgument);
    // In a nested message (medias[0].name) too.
    const media = Buffer.concat([valid, Buffer.from([0x2a, 0x06, 0x1a, 0x04, 0xff, 0xfe, 0xc3, 0x28])]);
    const nested = await unchanged("grpc nested", () => grpcRaw(env.url, send, media, fx.ann.token));
    expect(nested.grpcStatus, nested.grpcMessage).toBe(Code.InvalidArgument);
  });

  it("a 1 MB text is INVALID_ARGUMENT text over Connect JSON, gRPC and REST", async () => {
    const big = "x".repeat(1024 * 1024);
    const body = JSON.stringify({ chat_id: fx.talkId, text: big });
    const connect = await unchanged("1 MB connect", () => connectRaw(env.url, send, body, "application/json", fx.ann.token));
    expect(connect.status, connect.text.slice(0, 200)).toBe(400);
    expect(connect.json?.code).toBe("invalid_argument");
    expect(String(connect.json?.message)).toMatch(/^text/);
    const rest = await unchanged("1 MB rest", () =>
      httpCall(env.url, "POST", `/v1.0/talks/${fx.talkId}/messages`, { token: fx.ann.token, body, headers: { "Content-Type": "application/json" } }),
    );
    expect(rest.status, rest.text.slice(0, 200)).toBe(400);
    expect(rest.json?.code).toBe("invalid_argument");
    await unchanged("1 MB grpc", () => expectCode(env.as(fx.ann, "grpc").messages.sendMessage({ chatId: fx.talkId, text: big }), Code.InvalidArgument, "text"));
    // The same for an edit and a talk name.
    await expectCode(fx.ann.messages.updateMessage({ id: fx.messageId, text: big }), Code.InvalidArgument, "text");
    await expectCode(fx.ann.talks.updateTalk({ id: fx.talkId, name: big }), Code.InvalidArgument, "name");
  });

  it("a 10 MB body is RESOURCE_EXHAUSTED (or 413), not a crash", async () => {
    const huge = JSON.stringify({ chat_id: fx.talkId, text: "y".repeat(10 * 1024 * 1024) });
    const tryCall = async (call: () => Promise<HttpReply>): Promise<HttpReply | "connection closed"> => {
      try {
        return await call();
      } catch {
        // The server may stop reading and close; that is a refusal too.
        return "connection closed";
      }
    };
    const replies = await unchanged("10 MB", async () => [
      await tryCall(() => connectRaw(env.url, send, huge, "application/json", fx.ann.token)),
      await tryCall(() =>
        httpCall(env.url, "POST", `/v1.0/talks/${fx.talkId}/messages`, { token: fx.ann.token, body: huge, headers: { "Content-Type": "application/json" } }),
      ),
    ]);
    for (const reply of replies) {
      if (reply === "connection closed") continue;
      expect([413, 429], `HTTP ${reply.status} ${reply.text.slice(0, 200)}`).toContain(reply.status);
      if (reply.json?.code !== undefined) expect(reply.json.code).toBe("resource_exhausted");
    }
    // Over gRPC, on a connection of its own (the call may break it). Node's HTTP/2 client keeps at
    // most 10 MB of a session in memory and resets a 10 MB message itself, before the server sees
    // it; 6 MB still passes the client and is over the server's 4 MiB limit.
    const own = env.isolatedClients(fx.ann.token, "grpc");
    try {
      await own.talks.listTalks({});
      const grpcError = await unchanged("10 MB grpc", async () => {
        try {
          await own.messages.sendMessage({ chatId: fx.talkId, text: "z".repeat(6 * 1024 * 1024) });
          return "ok";
        } catch (error) {
          return Code[ConnectError.from(error).code] + ": " + ConnectError.from(error).rawMessage;
        }
      });
      expect(grpcError).toMatch(/^ResourceExhausted/);
    } finally {
      own.close();
    }
    await expectAlive(env, fx);
    // Other connections were never affected.
    expect((await env.isolatedClients(fx.ann.token, "grpc").talks.listTalks({})).result.length).toBeGreaterThan(0);
  }, 60_000);

  it("100,000 levels of nested JSON do not crash the process", async () => {
    const depth = 100_000;
    const nested = `${"[".repeat(depth)}${"]".repeat(depth)}`;
    const nestedObject = `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`;
    const bodies = [
      nested,
      nestedObject,
      `{"chat_id":"${fx.talkId}","text":${nested}}`,
      `{"chat_id":"${fx.talkId}","text":"hi","medias":${nested}}`,
      `{"chat_id":"${fx.talkId}","text":"hi","unknown":${nested}}`,
      `{"chat_id":"${fx.talkId}","text":"hi","unknown":${nestedObject}}`,
      `{"chat_id":"${fx.talkId}","text":"hi","medias":[${nestedObject}]}`,
    ];
    for (const body of bodies) {
      const what = body.slice(0, 60);
      const connect = await connectRaw(env.url, send, body, "application/json", fx.ann.token);
      if (connect.status !== 200) {
        expect(clientErrorStatuses.has(connect.status), `connect ${what}: HTTP ${connect.status} ${connect.text.slice(0, 200)}`).toBe(true);
        expect(clientErrorCodes.has(String(connect.json?.code)), `connect ${what}: ${connect.text.slice(0, 200)}`).toBe(true);
      }
      const rest = await httpCall(env.url, "POST", `/v1.0/talks/${fx.talkId}/messages`, {
        token: fx.ann.token,
        body,
        headers: { "Content-Type": "application/json" },
      });
      if (rest.status !== 200) {
        expect(clientErrorStatuses.has(rest.status), `rest ${what}: HTTP ${rest.status} ${rest.text.slice(0, 200)}`).toBe(true);
        expect(clientErrorCodes.has(String(rest.json?.code)), `rest ${what}: ${rest.text.slice(0, 200)}`).toBe(true);
      }
      await expectAlive(env, fx);
    }
  }, 60_000);

  it("malformed percent-encoding in a path is a client error, not a crash", async () => {
    for (const path of ["/%zz", "/v1.0/%zz", "/v1.0/talks/%E0%A4%A", "/app/%c3%28", "/v1.0/messages/%ff", "/talk.v1.TalkService/%zz"]) {
      for (const method of ["GET", "HEAD", "POST", "DELETE"]) {
        const reply = await httpCall(env.url, method, path, { token: fx.ann.token, timeoutMs: 3_000 }).catch((error: unknown) => {
          throw new Error(`${method} ${path}: no answer within 3 s (${String(error)})`);
        });
        expect(clientErrorStatuses.has(reply.status), `${method} ${path}: HTTP ${reply.status} ${reply.text}`).toBe(true);
      }
    }
    await expectAlive(env, fx);
  });

  it("wrong JSON types are INVALID_ARGUMENT", async () => {
    const cases: [string, unknown][] = [
      [send, { chat_id: 123, text: "hi" }],
      [send, { chat_id: fx.talkId, text: 42 }],
      [send, { chat_id: fx.talkId, text: { a: 1 } }],
      [send, { chat_id: fx.talkId, text: ["a"] }],
      [send, { chat_id: fx.talkId, text: true }],
      [send, { chat_id: fx.talkId, text: "hi", medias: {} }],
      [send, { chat_id: fx.talkId, text: "hi", medias: "x" }],
      [send, { chat_id: fx.talkId, text: "hi", medias: [1] }],
      ["talk.v1.TalkService/CreateTalk", { participant_ids: { a: fx.bob.id } }],
      ["talk.v1.TalkService/CreateTalk", { participant_ids: fx.bob.id }],
      ["talk.v1.TalkService/CreateTalk", { participant_ids: [1, 2] }],
      ["talk.v1.TalkService/ListTalks", { page_size: "abc" }],
      ["talk.v1.TalkService/ListTalks", { page_size: 1.5 }],
      ["talk.v1.TalkService/ListTalks", { page_size: 2 ** 40 }],
      ["talk.v1.TalkService/ListTalks", { page_size: [] }],
      ["talk.v1.TalkService/GetTalk", { id: [fx.talkId] }],
      ["talk.v1.TalkService/UpdateTalk", { id: fx.talkId, name: 5 }],
      ["talk.v1.AgentService/GetAgent", { id: { id: fx.bob.id } }],
    ];
    for (const [procedure, body] of cases) {
      const reply = await unchanged(procedure, () => connectRaw(env.url, procedure, JSON.stringify(body), "application/json", fx.ann.token));
      expect(reply.status, `${procedure} ${JSON.stringify(body)}: ${reply.text}`).toBe(400);
      expect(reply.json?.code).toBe("invalid_argument");
    }
    // The same through REST bodies and query parameters.
    const restCases: [string, string, string | undefined][] = [
      ["POST", `/v1.0/talks/${fx.talkId}/messages`, JSON.stringify({ text: 42 })],
      ["POST", `/v1.0/talks/${fx.talkId}/messages`, JSON.stringify({ text: "hi", medias: {} })],
      ["POST", "/v1.0/talks", JSON.stringify({ participant_ids: { a: 1 } })],
      ["POST", "/v1.0/talks", "[1,2]"],
      ["POST", "/v1.0/talks", '"text"'],
      ["GET", "/v1.0/talks?page_size=abc", undefined],
      ["GET", `/v1.0/talks/${fx.talkId}/events?after_seq=abc`, undefined],
      ["GET", `/v1.0/talks/${fx.talkId}/messages?page_size=1e999`, undefined],
    ];
    for (const [method, path, body] of restCases) {
      const reply = await unchanged(path, () =>
        httpCall(env.url, method, path, { token: fx.ann.token, body, headers: { "Content-Type": "application/json" }, firstLine: true }),
      );
      expect(reply.status, `${method} ${path} ${body ?? ""}: ${reply.text}`).toBe(400);
      expect(reply.json?.code).toBe("invalid_argument");
    }
  });

  it("unknown fields are ignored: the call succeeds", async () => {
    const body = JSON.stringify({ chat_id: fx.talkId, text: "with extras", foo: 1, bar: { baz: [1, { q: null }] }, chatId2: "x", tm_create: "garbage" });
    const connect = await connectRaw(env.url, send, body, "application/json", fx.ann.token);
    expect(connect.status, connect.text).toBe(200);
    expect(connect.json?.message?.text).toBe("with extras");
    const rest = await httpCall(env.url, "POST", `/v1.0/talks/${fx.talkId}/messages`, { token: fx.ann.token, body, headers: { "Content-Type": "application/json" } });
    expect(rest.status, rest.text).toBe(200);
    expect(rest.json?.text).toBe("with extras");
    const restQuery = await httpCall(env.url, "GET", `/v1.0/talks?page_size=2&unknown=1&deep.er.field=2`, { token: fx.ann.token });
    expect(restQuery.status, restQuery.text).toBe(200);
    // Unknown fields in binary protobuf too (field 99, varint).
    const bin = Buffer.concat([
      toBinary(SendMessageRequestSchema, create(SendMessageRequestSchema, { chatId: fx.talkId, text: "bin extras" })),
      Buffer.from([0x98, 0x06, 0x01]),
    ]);
    const binary = await connectRaw(env.url, send, bin, "application/proto", fx.ann.token);
    expect(binary.status, binary.text).toBe(200);
  });

  it("invalid UUIDs in every id field are INVALID_ARGUMENT naming the field", async () => {
    const bad = ["not-a-uuid", "123", "' OR 1=1 --", `${fx.talkId}0`, fx.talkId.replace(/-/g, ""), "00000000-0000-0000-0000-00000000000g", ` ${fx.talkId}`];
    const ann = fx.ann;
    const admin = fx.admin;
    // Each case: the call with one id field bad, the others valid.
    const cases: [string, string, (v: string) => Promise<unknown>][] = [
      ["GetTalk", "id", (v) => ann.talks.getTalk({ id: v })],
      ["UpdateTalk", "id", (v) => ann.talks.updateTalk({ id: v, name: "n" })],
      ["CloseTalk", "id", (v) => ann.talks.closeTalk({ id: v })],
      ["ReopenTalk", "id", (v) => ann.talks.reopenTalk({ id: v })],
      ["DeleteTalk", "id", (v) => ann.talks.deleteTalk({ id: v })],
      ["CreateTalk", "participant_ids", (v) => ann.talks.createTalk({ type: "group", participantIds: [fx.bob.id, v] })],
      ["AddParticipant", "chat_id", (v) => ann.talks.addParticipant({ chatId: v, agentId: admin.id })],
      ["AddParticipant", "agent_id", (v) => ann.talks.addParticipant({ chatId: fx.talkId, agentId: v })],
      ["AddParticipant", "owner_id", (v) => ann.talks.addParticipant({ chatId: fx.talkId, ownerType: "agent", ownerId: v })],
      ["RemoveParticipant", "chat_id", (v) => ann.talks.removeParticipant({ chatId: v, participantId: fx.bobParticipantId })],
      ["RemoveParticipant", "participant_id", (v) => ann.talks.removeParticipant({ chatId: fx.talkId, participantId: v })],
      ["ListParticipants", "chat_id", (v) => ann.talks.listParticipants({ chatId: v })],
      ["WatchTalk", "chat_id", async (v) => {
        for await (const _ of ann.talks.watchTalk({ chatId: v })) break;
      }],
      ["SendMessage", "chat_id", (v) => ann.messages.sendMessage({ chatId: v, text: "x" })],
      ["SendMessage", "parent_id", (v) => ann.messages.sendMessage({ chatId: fx.talkId, text: "x", parentId: v })],
      ["GetMessage", "id", (v) => ann.messages.getMessage({ id: v })],
      ["ListMessages", "chat_id", (v) => ann.messages.listMessages({ chatId: v })],
      ["ListMessages", "parent_id", (v) => ann.messages.listMessages({ chatId: fx.talkId, parentId: v })],
      ["UpdateMessage", "id", (v) => ann.messages.updateMessage({ id: v, text: "x" })],
      ["DeleteMessage", "id", (v) => ann.messages.deleteMessage({ id: v })],
      ["AddReaction", "message_id", (v) => ann.messages.addReaction({ messageId: v, emoji: "thumbsup" })],
      ["RemoveReaction", "message_id", (v) => ann.messages.removeReaction({ messageId: v, emoji: "thumbsup" })],
      ["CreateAgent", "id", (v) => admin.agents.createAgent({ id: v, name: "New" })],
      ["GetAgent", "id", (v) => ann.agents.getAgent({ id: v })],
      ["UpdateAgent", "id", (v) => admin.agents.updateAgent({ id: v, name: "x" })],
      ["DeleteAgent", "id", (v) => admin.agents.deleteAgent({ id: v })],
    ];
    // Every RPC with an id-like request field has a case.
    const idFields = rpcs.flatMap((r) =>
      r.method.input.fields.filter((f) => f.name === "id" || f.name.endsWith("_id") || f.name.endsWith("_ids")).filter((f) => f.name !== "client_message_id").map((f) => `${r.method.name}.${f.name}`),
    );
    expect(new Set(cases.map(([m, f]) => `${m}.${f}`))).toEqual(new Set(idFields));
    const before = await env.counts();
    for (const [method, field, call] of cases) {
      for (const value of bad) {
        const error = await expectCode(call(value), Code.InvalidArgument).catch((e: unknown) => {
          throw new Error(`${method} ${field}=${JSON.stringify(value)}: ${String(e)}`);
        });
        expect(error.rawMessage, `${method} ${field}=${JSON.stringify(value)}`).toContain(field === "owner_id" ? "_id" : field);
      }
    }
    expect(await env.counts()).toEqual(before);
    // And in REST paths.
    for (const path of ["/v1.0/talks/not-a-uuid", "/v1.0/messages/123", "/v1.0/agents/%27%20OR%201%3D1", "/v1.0/talks/x/participants", "/v1.0/service_agents/talk_messages/zz"]) {
      const reply = await httpCall(env.url, "GET", path, { token: ann.token });
      expect(reply.status, `${path}: ${reply.text}`).toBe(400);
      expect(reply.json?.code).toBe("invalid_argument");
    }
  });

  it("SQL and HTML in text are stored and returned verbatim", async () => {
    const texts = [sqlText, htmlText, `${sqlText}${htmlText}`, "\\'; SELECT pg_sleep(5); --", "$1 $$ %s %n {{7*7}} ${7*7}"];
    for (const text of texts) {
      const sent = must((await fx.ann.messages.sendMessage({ chatId: fx.talkId, text })).message);
      expect(sent.text).toBe(text);
      expect(must((await fx.bob.messages.getMessage({ id: sent.id })).message).text).toBe(text);
      const rest = await httpCall(env.url, "POST", `/v1.0/talks/${fx.talkId}/messages`, {
        token: fx.ann.token,
        body: JSON.stringify({ text }),
        headers: { "Content-Type": "application/json" },
      });
      expect(rest.status, rest.text).toBe(200);
      expect(rest.json?.text).toBe(text);
      const read = await httpCall(env.url, "GET", `/v1.0/messages/${String(rest.json?.id)}`, { token: fx.bob.token });
      expect(read.json?.text).toBe(text);
      // Served as JSON, never as HTML.
      expect(read.headers.get("content-type")).toMatch(/^application\/json/);
    }
    const named = must((await fx.ann.talks.createTalk({ type: "group", name: htmlText, detail: sqlText })).talk);
    const got = must((await fx.ann.talks.getTalk({ id: named.id })).talk);
    expect([got.name, got.detail]).toEqual([htmlText, sqlText]);
    const hostileAgent = await env.agent(fx.customer, sqlText);
    expect(must((await fx.ann.agents.getAgent({ id: hostileAgent.id })).agent).name).toBe(sqlText);
    // The messages table is still there and the listing shows all of them.
    const listed = await fx.ann.messages.listMessages({ chatId: fx.talkId, pageSize: 200 });
    for (const text of texts) expect(listed.result.filter((m) => m.text === text)).toHaveLength(2);
    expect((await env.counts()).messages).toBeGreaterThan(0);
  });
});
