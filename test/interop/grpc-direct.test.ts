/**
 * Unary gRPC over HTTP/2 on the service's direct path (application/grpc or
 * application/grpc+proto, no grpc-encoding or grpc-encoding identity; src/http/grpc-direct.ts),
 * checked with a raw node:http2 client that frames its messages by hand:
 * good calls, the fall-through to connect-node for compressed requests, malformed envelopes,
 * grpc-timeout, the request size limit, authentication and tenancy, and client cancellation.
 * After every refusal the same HTTP/2 connection must still carry a good call.
 */
import { randomBytes, randomUUID } from "node:crypto";
import http2 from "node:http2";
import { gunzipSync, gzipSync } from "node:zlib";
import {
  create,
  fromBinary,
  toBinary,
  type DescMessage,
  type DescMethodUnary,
  type MessageInitShape,
  type MessageShape,
} from "@bufbuild/protobuf";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MessageService } from "../../gen/talk/v1/message_service_pb.js";
import type { Talk } from "../../gen/talk/v1/resources_pb.js";
import { TalkService } from "../../gen/talk/v1/talk_service_pb.js";
import { mintToken } from "../../src/auth/tokens.js";
import { defaultHttpConfig } from "../../src/config.js";
import { compressedFlag, frame, parseFrames } from "../support/envelopes.js";
import { backends, Code, createTalk, must, newCustomer, sleep, useService, UUID_RE, type TestAgent } from "../support/harness.js";
import { withTimeout } from "../support/security-helpers.js";

/** The harness starts its services without an HttpConfig, so with the default request limit. */
const maxRequestBytes = defaultHttpConfig.maxRequestBytes;

const createTalkMethod = TalkService.method.createTalk;
const getTalkMethod = TalkService.method.getTalk;
const sendMessageMethod = MessageService.method.sendMessage;

const pathOf = (method: { parent: { typeName: string }; name: string }): string => `/${method.parent.typeName}/${method.name}`;

const encode = <I extends DescMessage>(schema: I, init: MessageInitShape<I>): Uint8Array => toBinary(schema, create(schema, init));

/** A gRPC length-prefixed message: flag byte, uint32 big-endian length (`declared`, by default the real one), bytes. */
const envelope = (bytes: Uint8Array, options: { flag?: number; declared?: number } = {}): Buffer =>
  frame(bytes, { flags: options.flag ?? 0, ...(options.declared === undefined ? {} : { declared: options.declared }) });

interface Reply {
  /** The HTTP :status. */
  readonly status: number | undefined;
  readonly headers: http2.IncomingHttpHeaders;
  readonly trailers: http2.IncomingHttpHeaders | undefined;
  /** grpc-status from the trailers, or from the headers of a trailers-only answer. */
  readonly grpcStatus: number | undefined;
  readonly grpcMessage: string;
  /** The response messages' payloads (gunzipped when flagged compressed). */
  readonly messages: readonly Buffer[];
  readonly flags: readonly number[];
}

function parseReply(headers: http2.IncomingHttpHeaders, trailers: http2.IncomingHttpHeaders | undefined, body: Buffer): Reply {
  const source = trailers?.["grpc-status"] !== undefined ? trailers : headers;
  const status = source["grpc-status"];
  const message = source["grpc-message"];
  const messages: Buffer[] = [];
  const flags: number[] = [];
  const { frames, rest } = parseFrames(body);
  for (const { flags: flag, payload, declared, truncated } of frames) {
    if (truncated) throw new Error(`response message cut short: ${payload.length} of ${declared} bytes`);
    flags.push(flag);
    messages.push(flag & compressedFlag ? gunzipSync(payload) : payload);
  }
  if (rest.length !== 0) throw new Error(`${rest.length} stray bytes after the response messages`);
  return {
    status: typeof headers[":status"] === "number" ? headers[":status"] : undefined,
    headers,
    trailers,
    grpcStatus: typeof status === "string" ? Number(status) : undefined,
    grpcMessage: typeof message === "string" ? decodeURIComponent(message) : "",
    messages,
    flags,
  };
}

/** Reads a response up to its end (trailers), or until the stream closes; fails after `timeoutMs`. */
function collect(stream: http2.ClientHttp2Stream, timeoutMs = 5_000): Promise<Reply> {
  return new Promise((resolve, reject) => {
    let headers: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders | undefined;
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (error?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error !== undefined) reject(error);
      else {
        try {
          resolve(parseReply(headers, trailers, Buffer.concat(chunks)));
        } catch (failure) {
          reject(failure instanceof Error ? failure : new Error(String(failure)));
        }
      }
    };
    const timer = setTimeout(() => {
      stream.close(http2.constants.NGHTTP2_CANCEL);
      finish(new Error(`no complete answer within ${timeoutMs} ms (headers ${JSON.stringify(headers)})`));
    }, timeoutMs);
    stream.on("response", (h) => (headers = h));
    stream.on("trailers", (h) => (trailers = h));
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("end", () => finish());
    stream.on("close", () => finish());
    // A reset after a complete answer is not a failure of the answer.
    stream.on("error", (error) => {
      if (headers[":status"] === undefined) finish(error);
    });
  });
}

/** One raw HTTP/2 connection (h2c, prior knowledge) to the service. */
class RawSession {
  readonly session: http2.ClientHttp2Session;

  constructor(baseUrl: string) {
    this.session = http2.connect(baseUrl);
    this.session.on("error", () => undefined);
  }

  /** Opens a gRPC request: POST `path` with the gRPC headers, `token` and `headers`. */
  open(path: string, token: string | undefined, headers: Record<string, string> = {}): http2.ClientHttp2Stream {
    const outgoing: http2.OutgoingHttpHeaders = {
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      ...headers,
    };
    const stream = this.session.request(outgoing);
    stream.on("error", () => undefined);
    return stream;
  }

  /** Sends `body` as the whole request body and reads the answer. */
  call(path: string, body: Buffer, token: string | undefined, headers: Record<string, string> = {}): Promise<Reply> {
    const stream = this.open(path, token, headers);
    const reply = collect(stream);
    stream.end(body);
    return reply;
  }

  close(): void {
    this.session.destroy();
  }
}

/** Asserts a successful gRPC answer: HTTP 200, gRPC content type, one message, grpc-status 0 in the trailers. */
function expectOk(reply: Reply): Buffer {
  expect(reply.status).toBe(200);
  expect(reply.grpcStatus, `grpc-status ${String(reply.grpcStatus)}: ${reply.grpcMessage}`).toBe(0);
  expect(reply.trailers?.["grpc-status"]).toBe("0");
  expect(String(reply.headers["content-type"])).toMatch(/^application\/grpc/);
  expect(reply.messages).toHaveLength(1);
  return must(reply.messages[0], "response message");
}

/** Asserts a gRPC error answer: HTTP 200 (gRPC errors ride on it), `code`, no message. */
function expectStatus(reply: Reply, code: Code, mentions?: RegExp): void {
  expect(reply.status).toBe(200);
  expect(reply.grpcStatus === undefined ? "none" : Code[reply.grpcStatus], `grpc-message: ${reply.grpcMessage}`).toBe(Code[code]);
  expect(reply.messages).toHaveLength(0);
  if (mentions !== undefined) expect(reply.grpcMessage).toMatch(mentions);
}

/** A unary call with a well-formed request; returns the decoded response and the raw reply. */
async function unary<I extends DescMessage, O extends DescMessage>(
  h2: RawSession,
  method: DescMethodUnary<I, O>,
  init: MessageInitShape<I>,
  token: string | undefined,
  headers: Record<string, string> = {},
): Promise<{ reply: Reply; response: MessageShape<O> }> {
  const reply = await h2.call(pathOf(method), envelope(encode(method.input, init)), token, headers);
  return { reply, response: fromBinary(method.output, expectOk(reply)) };
}

describe.each(backends)("unary gRPC over raw HTTP/2 on %s", (backend) => {
  const env = useService(backend);
  let h2: RawSession;

  beforeEach(() => {
    h2 = new RawSession(env.service.url);
  });
  afterEach(() => h2.close());

  /** Ann and Bob of one customer, with a talk of Ann's that Bob is in. */
  async function pair(): Promise<{ ann: TestAgent; bob: TestAgent; talk: Talk }> {
    const customer = newCustomer();
    const ann = await env.agent(customer, "Ann", { via: "connect" });
    const bob = await env.agent(customer, "Bob", { via: "connect" });
    return { ann, bob, talk: await createTalk(ann, [bob]) };
  }

  /** The texts of a talk's agent messages (not the system's), as `reader` reads them over Connect. */
  const textsOf = async (reader: TestAgent, chatId: string): Promise<string[]> =>
    (await reader.messages.listMessages({ chatId })).result.filter((message) => message.type !== "system").map((message) => message.text);

  /** The same connection still carries a good call (GetTalk of `talk`). */
  async function expectUsable(agent: TestAgent, talk: Talk): Promise<void> {
    const { response } = await unary(h2, getTalkMethod, { id: talk.id }, agent.token);
    expect(must(response.talk, "talk").id).toBe(talk.id);
  }

  it("CreateTalk, SendMessage and GetTalk on one connection: grpc-status 0 in the trailers, decodable answers, x-request-id", async () => {
    const customer = newCustomer();
    const ann = await env.agent(customer, "Ann", { via: "connect" });
    const bob = await env.agent(customer, "Bob", { via: "connect" });
    const name = `raw ${randomUUID()}`;

    const created = await unary(h2, createTalkMethod, { type: "group", name, participantIds: [bob.id] }, ann.token);
    const talk = must(created.response.talk, "talk");
    expect(talk.id).toMatch(UUID_RE);
    expect(talk.name).toBe(name);
    expect(talk.customerId).toBe(customer);
    expect(talk.memberCount).toBe(2);
    expect(String(created.reply.headers["x-request-id"])).toMatch(UUID_RE);
    expect(created.reply.headers["grpc-status"], "grpc-status belongs in the trailers of a call with a message").toBeUndefined();
    expect(created.reply.flags).toEqual([0]);

    // The caller's x-request-id comes back; application/grpc+proto is the same protocol.
    const requestId = `raw-${randomUUID()}`;
    const text = `hello ${randomUUID()}`;
    const sent = await unary(h2, sendMessageMethod, { chatId: talk.id, text }, ann.token, {
      "content-type": "application/grpc+proto",
      "x-request-id": requestId,
    });
    const message = must(sent.response.message, "message");
    expect(sent.reply.headers["x-request-id"]).toBe(requestId);
    expect(message.chatId).toBe(talk.id);
    expect(message.text).toBe(text);
    expect(message.ownerId).toBe(ann.id);
    expect(message.seq > 0n).toBe(true);

    // grpc-encoding identity is no compression at all.
    const got = await unary(h2, getTalkMethod, { id: talk.id }, bob.token, { "grpc-encoding": "identity" });
    const seen = must(got.response.talk, "talk");
    expect(seen.id).toBe(talk.id);
    expect(seen.lastSeq >= message.seq).toBe(true);
    expect(seen.lastSeq > talk.lastSeq).toBe(true);
    expect(got.reply.headers["x-request-id"]).not.toBe(created.reply.headers["x-request-id"]);

    // The message really is there, for another agent over another protocol.
    expect(await textsOf(bob, talk.id)).toContain(text);
  });

  it("a gzip-compressed request (grpc-encoding gzip) is served as well", async () => {
    const { ann, bob, talk } = await pair();
    const text = `zipped ${randomUUID()}`;
    const compressed = gzipSync(encode(sendMessageMethod.input, { chatId: talk.id, text }));
    const reply = await h2.call(pathOf(sendMessageMethod), envelope(compressed, { flag: 1 }), ann.token, { "grpc-encoding": "gzip" });
    const message = must(fromBinary(sendMessageMethod.output, expectOk(reply)).message, "message");
    expect(message.text).toBe(text);
    expect(message.chatId).toBe(talk.id);
    // No grpc-accept-encoding was sent: the answer may use the request's encoding.
    expect([undefined, "gzip", "identity"]).toContain(reply.headers["grpc-encoding"]);
    expect(String(reply.headers["x-request-id"])).toMatch(UUID_RE);
    expect(await textsOf(bob, talk.id)).toContain(text);
    await expectUsable(ann, talk);
  });

  it.each([
    ["without grpc-encoding", {}],
    ["with grpc-encoding identity", { "grpc-encoding": "identity" }],
  ])("a message flagged compressed %s is INTERNAL and sends nothing", async (_, headers: Record<string, string>) => {
    const { ann, bob, talk } = await pair();
    const text = `flagged ${randomUUID()}`;
    const compressed = gzipSync(encode(sendMessageMethod.input, { chatId: talk.id, text }));
    const reply = await h2.call(pathOf(sendMessageMethod), envelope(compressed, { flag: 1 }), ann.token, headers);
    expectStatus(reply, Code.Internal, /compress/);
    expect(await textsOf(bob, talk.id)).not.toContain(text);
    await expectUsable(ann, talk);
  });

  const malformed: [string, (request: Uint8Array) => Buffer, Code][] = [
    [
      "an envelope announcing 10 more bytes than it carries",
      (request) => envelope(request, { declared: request.length + 10 }),
      Code.InvalidArgument,
    ],
    ["an envelope announcing 100 bytes with none sent", () => envelope(new Uint8Array(0), { declared: 100 }), Code.InvalidArgument],
    ["garbage protobuf bytes", () => envelope(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff])), Code.InvalidArgument],
    ["a field cut short (5 bytes announced, 1 sent)", () => envelope(Buffer.from([0x0a, 0x05, 0x61])), Code.InvalidArgument],
    ["an empty body (no message)", () => Buffer.alloc(0), Code.Unimplemented],
    ["two messages in one body", (request) => Buffer.concat([envelope(request), envelope(request)]), Code.Unimplemented],
  ];

  it.each(malformed)("%s is refused, sends nothing, and the connection stays usable", async (_, body, code) => {
    const { ann, bob, talk } = await pair();
    const text = `malformed ${randomUUID()}`;
    const request = encode(sendMessageMethod.input, { chatId: talk.id, text });
    const reply = await h2.call(pathOf(sendMessageMethod), body(request), ann.token);
    expectStatus(reply, code);
    if (code === Code.InvalidArgument) expect(reply.grpcMessage).toMatch(/envelope|parse|premature|invalid|wire/i);
    expect(await textsOf(bob, talk.id)).not.toContain(text);
    await expectUsable(ann, talk);
    // A good send on the same connection still goes through.
    const good = await unary(h2, sendMessageMethod, { chatId: talk.id, text: `${text} (good)` }, ann.token);
    expect(must(good.response.message, "message").text).toBe(`${text} (good)`);
    expect(await textsOf(bob, talk.id)).toEqual([`${text} (good)`]);
  });

  it("an invalid grpc-timeout is INVALID_ARGUMENT (as connect's parseTimeout says) and nothing is sent; valid ones succeed", async () => {
    const { ann, bob, talk } = await pair();
    // parseTimeout accepts 1 to 8 digits and one unit of H M S m u n; anything else is INVALID_ARGUMENT.
    for (const timeout of ["abc", "5", "S", "-1S", "1.5S", "123456789S", "5s"]) {
      const text = `timeout ${timeout} ${randomUUID()}`;
      const reply = await h2.call(
        pathOf(sendMessageMethod),
        envelope(encode(sendMessageMethod.input, { chatId: talk.id, text })),
        ann.token,
        {
          "grpc-timeout": timeout,
        },
      );
      expectStatus(reply, Code.InvalidArgument, /timeout/);
      expect(reply.grpcMessage, timeout).toContain(timeout);
      expect(await textsOf(bob, talk.id)).not.toContain(text);
    }
    // Generous valid deadlines do not get in the way, also those past what a timer holds (2^31 ms).
    for (const timeout of ["5S", "30000m", "1H", "100H", "99999999u", "2600000S", "99999999H"]) {
      const text = `within ${timeout}`;
      const { response } = await unary(h2, sendMessageMethod, { chatId: talk.id, text }, ann.token, { "grpc-timeout": timeout });
      expect(must(response.message, "message").text).toBe(text);
    }
    const valid = ["within 5S", "within 30000m", "within 1H", "within 100H", "within 99999999u", "within 2600000S", "within 99999999H"];
    expect((await textsOf(bob, talk.id)).sort()).toEqual([...valid].sort());
  });

  it("a message over maxRequestBytes is RESOURCE_EXHAUSTED as soon as its prefix arrives; the connection stays usable", async () => {
    const { ann, talk } = await pair();
    // Only the 5-byte prefix and a few bytes are sent, and the request is not ended: the answer
    // must not wait for the (announced) body.
    const stream = h2.open(pathOf(sendMessageMethod), ann.token);
    const answer = collect(stream);
    const reset = new Promise<number>((resolve) => stream.once("close", () => resolve(stream.rstCode ?? -1)));
    stream.write(envelope(Buffer.alloc(16), { declared: maxRequestBytes + 1 }));
    const reply = await answer;
    expectStatus(reply, Code.ResourceExhausted, new RegExp(`${maxRequestBytes + 1}`));
    // The server resets the stream itself (NO_ERROR): the rest of the body is not taken in.
    expect(await withTimeout(reset, 2_000, "the server's reset")).toBe(http2.constants.NGHTTP2_NO_ERROR);
    await expectUsable(ann, talk);

    // The largest length field: the same.
    expectStatus(
      await h2.call(pathOf(getTalkMethod), envelope(Buffer.alloc(8), { declared: 0xffffffff }), ann.token),
      Code.ResourceExhausted,
    );
    await expectUsable(ann, talk);
  });

  it("a message of exactly maxRequestBytes is read (and judged on its content); one byte more, sent whole, is RESOURCE_EXHAUSTED", async () => {
    const { ann, talk } = await pair();
    // A CreateTalk request whose encoding is exactly the limit: its detail is far too long.
    let detailLength = maxRequestBytes - 16;
    let request = encode(createTalkMethod.input, { type: "group", detail: "d".repeat(detailLength) });
    detailLength += maxRequestBytes - request.length;
    request = encode(createTalkMethod.input, { type: "group", detail: "d".repeat(detailLength) });
    expect(request.length).toBe(maxRequestBytes);
    const atLimit = await h2.call(pathOf(createTalkMethod), envelope(request), ann.token);
    expectStatus(atLimit, Code.InvalidArgument, /detail/);
    await expectUsable(ann, talk);

    const over = encode(createTalkMethod.input, { type: "group", detail: "d".repeat(detailLength + 1) });
    expect(over.length).toBe(maxRequestBytes + 1);
    const overLimit = await h2.call(pathOf(createTalkMethod), envelope(over), ann.token);
    expectStatus(overLimit, Code.ResourceExhausted);
    await expectUsable(ann, talk);
  });

  it("no or a bad Authorization is UNAUTHENTICATED; another customer's talk is NOT_FOUND", async () => {
    const { ann, bob, talk } = await pair();
    const request = (text: string) => envelope(encode(sendMessageMethod.input, { chatId: talk.id, text }));
    const path = pathOf(sendMessageMethod);

    expectStatus(await h2.call(path, request("no token"), undefined), Code.Unauthenticated);
    expectStatus(await h2.call(path, request("not a jwt"), "not-a-jwt"), Code.Unauthenticated);
    expectStatus(
      await h2.call(path, request("basic"), undefined, { authorization: "Basic YWxhZGRpbjpvcGVuc2VzYW1l" }),
      Code.Unauthenticated,
    );
    const forged = await mintToken(randomBytes(32).toString("hex"), { customerId: ann.customerId, agentId: ann.id, name: "Ann" });
    expectStatus(await h2.call(path, request("forged"), forged), Code.Unauthenticated);
    expectStatus(
      await h2.call(pathOf(getTalkMethod), envelope(encode(getTalkMethod.input, { id: talk.id })), forged),
      Code.Unauthenticated,
    );

    // A valid agent of another customer sees neither the talk nor a way to write to it.
    const eve = await env.agent(newCustomer(), "Eve", { via: "connect" });
    expectStatus(await h2.call(pathOf(getTalkMethod), envelope(encode(getTalkMethod.input, { id: talk.id })), eve.token), Code.NotFound);
    expectStatus(await h2.call(path, request("from another customer"), eve.token), Code.NotFound);

    expect(await textsOf(bob, talk.id)).toEqual([]);
    await expectUsable(ann, talk);
  });

  it("a call cancelled by the client mid-message sends nothing; the server and the connection carry on", async () => {
    const { ann, bob, talk } = await pair();
    const text = `cancelled ${randomUUID()}`;
    const frame = envelope(encode(sendMessageMethod.input, { chatId: talk.id, text }));

    // Headers and half a message, then RST_STREAM(CANCEL); several at once, and one with headers only.
    const cancelled = Array.from({ length: 8 }, async (_, i) => {
      const stream = h2.open(pathOf(sendMessageMethod), ann.token);
      const closed = new Promise<void>((resolve) => stream.once("close", () => resolve()));
      if (i > 0) await new Promise<void>((resolve) => stream.write(frame.subarray(0, Math.ceil(frame.length / 2)), () => resolve()));
      await sleep(20);
      stream.close(http2.constants.NGHTTP2_CANCEL);
      await closed;
      expect(stream.rstCode).toBe(http2.constants.NGHTTP2_CANCEL);
    });
    await Promise.all(cancelled);
    // Give the server a moment to see the resets before judging what they did.
    await sleep(100);

    expect(h2.session.destroyed).toBe(false);
    const after = `${text} (after)`;
    const { response } = await unary(h2, sendMessageMethod, { chatId: talk.id, text: after }, ann.token);
    expect(must(response.message, "message").text).toBe(after);
    expect(await textsOf(bob, talk.id)).toEqual([after]);

    // A fresh connection is served too.
    const other = new RawSession(env.service.url);
    try {
      const { response: got } = await unary(other, getTalkMethod, { id: talk.id }, bob.token);
      expect(must(got.talk, "talk").id).toBe(talk.id);
    } finally {
      other.close();
    }
  });
});
