/**
 * The WebSocket reached with raw frames over a plain TCP socket: the HTTP upgrade by hand, then
 * frames built byte by byte. Every malformed frame (too big, invalid UTF-8, unmasked, reserved
 * opcode, RSV bits, broken control frames) closes only its own socket with the close code RFC
 * 6455 fixes for it, and the service goes on serving; random frames never kill the process. A
 * client that floods frames and never reads is closed with 1008 once the server holds the
 * documented amount of unread bytes for it, and no more is queued.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import fc from "fast-check";
import { afterEach, describe, expect, it, vi } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { backends, must, newCustomer, useService, type TestAgent } from "../support/harness.js";
import { noAbuseLimits } from "../../src/config.js";

/** The service's limits (src/service.ts; docs/api.md, WebSocket). */
const maxFrameBytes = 64 * 1024;
const maxBufferedBytes = 1 << 20;

interface CloseFrame {
  readonly code: number | undefined;
  readonly reason: string;
}

/** One server frame as received: opcode and payload (server frames are never masked). */
interface ServerFrame {
  readonly opcode: number;
  readonly payload: Buffer;
}

/**
 * A WebSocket client on a raw TCP socket: it performs the upgrade itself and then writes
 * whatever bytes the test gives it, and it decodes what the server sends back.
 */
class RawWs {
  readonly frames: ServerFrame[] = [];
  /** The close frame received, if any. */
  close: CloseFrame | undefined;
  /** The TCP connection ended (either side). */
  ended = false;
  /** Bytes received after the HTTP response head. */
  bytesReceived = 0;
  status = 0;
  #buffer = Buffer.alloc(0);
  #head = true;

  private constructor(readonly socket: Socket) {
    socket.on("data", (chunk: Buffer) => this.#take(chunk));
    socket.on("error", () => (this.ended = true));
    socket.on("close", () => (this.ended = true));
  }

  /** Connects and upgrades; resolves once the HTTP answer's head is read (see `status`). */
  static async open(
    port: number,
    options: { token?: string; query?: string; path?: string; headers?: Record<string, string> },
  ): Promise<RawWs> {
    const socket = connect({ host: "127.0.0.1", port });
    const raw = new RawWs(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    const query = options.query ?? (options.token === undefined ? "" : `?token=${encodeURIComponent(options.token)}`);
    const headers = {
      Host: `127.0.0.1:${port}`,
      Upgrade: "websocket",
      Connection: "Upgrade",
      "Sec-WebSocket-Key": randomBytes(16).toString("base64"),
      "Sec-WebSocket-Version": "13",
      ...options.headers,
    };
    const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`);
    socket.write(`GET ${options.path ?? "/v1.0/ws"}${query} HTTP/1.1\r\n${lines.join("")}\r\n`);
    await vi.waitFor(() => expect(raw.status !== 0 || raw.ended, "the upgrade answer").toBe(true), { timeout: 10_000, interval: 20 });
    return raw;
  }

  #take(chunk: Buffer): void {
    this.#buffer = Buffer.concat([this.#buffer, chunk]);
    if (this.#head) {
      const end = this.#buffer.indexOf("\r\n\r\n");
      if (end < 0) return;
      this.status = Number(/^HTTP\/1\.1 (\d{3})/.exec(this.#buffer.subarray(0, end).toString("latin1"))?.[1] ?? -1);
      this.#head = false;
      this.#buffer = this.#buffer.subarray(end + 4);
      this.bytesReceived += this.#buffer.length;
    } else {
      this.bytesReceived += chunk.length;
    }
    // A bounded loop: each turn consumes one whole frame from the buffer.
    while (this.#buffer.length >= 2) {
      const opcode = this.#buffer[0]! & 0x0f;
      let length = this.#buffer[1]! & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (this.#buffer.length < 4) return;
        length = this.#buffer.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (this.#buffer.length < 10) return;
        length = Number(this.#buffer.readBigUInt64BE(2));
        offset = 10;
      }
      if (this.#buffer.length < offset + length) return;
      const payload = Buffer.from(this.#buffer.subarray(offset, offset + length));
      this.#buffer = this.#buffer.subarray(offset + length);
      this.frames.push({ opcode, payload });
      // Pings are answered, as every client must: the server drops sockets that do not.
      if (opcode === 0x9 && !this.ended) this.socket.write(frame({ opcode: 0xa, payload }));
      if (opcode === 0x8 && this.close === undefined) {
        this.close = { code: payload.length >= 2 ? payload.readUInt16BE(0) : undefined, reason: payload.subarray(2).toString("utf8") };
      }
    }
  }

  /** The text frames received, parsed. */
  get texts(): Record<string, unknown>[] {
    return this.frames.filter((f) => f.opcode === 0x1).map((f) => JSON.parse(f.payload.toString("utf8")) as Record<string, unknown>);
  }

  write(bytes: Buffer): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(bytes, (error) => (error ? reject(error) : resolve())));
  }

  /** Waits for the server's close frame (or the end of the connection); returns it. */
  async closed(timeoutMs = 15_000): Promise<CloseFrame | undefined> {
    await vi.waitFor(
      () =>
        expect(this.close !== undefined || this.ended, `a close frame (${this.frames.length} frames, ${this.bytesReceived} bytes)`).toBe(
          true,
        ),
      { timeout: timeoutMs, interval: 20 },
    );
    return this.close;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

interface FrameSpec {
  readonly fin?: boolean;
  /** RSV1..3 as the bits 0b100, 0b010, 0b001. */
  readonly rsv?: number;
  readonly opcode: number;
  readonly masked?: boolean;
  readonly payload?: Uint8Array;
  /** The length written in the header, when it is not the payload's; `form` picks its encoding. */
  readonly declared?: bigint;
  readonly form?: 7 | 16 | 64;
  readonly mask?: Uint8Array;
}

/** The bytes of one client frame, masked unless told otherwise, its header as given. */
function frame(spec: FrameSpec): Buffer {
  const payload = Buffer.from(spec.payload ?? new Uint8Array());
  const declared = spec.declared ?? BigInt(payload.length);
  const form = spec.form ?? (declared <= 125n ? 7 : declared <= 0xffffn ? 16 : 64);
  const masked = spec.masked ?? true;
  const first = ((spec.fin ?? true) ? 0x80 : 0) | (((spec.rsv ?? 0) & 0x7) << 4) | (spec.opcode & 0x0f);
  const maskBit = masked ? 0x80 : 0;
  let head: Buffer;
  if (form === 7) head = Buffer.from([first, maskBit | Number(declared & 0x7fn)]);
  else if (form === 16) {
    head = Buffer.alloc(4);
    head.writeUInt8(first, 0);
    head.writeUInt8(maskBit | 126, 1);
    head.writeUInt16BE(Number(declared & 0xffffn), 2);
  } else {
    head = Buffer.alloc(10);
    head.writeUInt8(first, 0);
    head.writeUInt8(maskBit | 127, 1);
    head.writeBigUInt64BE(declared & 0xffff_ffff_ffff_ffffn, 2);
  }
  if (!masked) return Buffer.concat([head, payload]);
  const mask = Buffer.from(spec.mask ?? randomBytes(4));
  const body = Buffer.from(payload.map((byte, i) => byte ^ mask[i % 4]!));
  return Buffer.concat([head, mask, body]);
}

const text = (value: string): Buffer => Buffer.from(value, "utf8");

/** A close frame from the client, as a polite client ends. */
const closeFrame = (): Buffer => {
  const payload = Buffer.alloc(2);
  payload.writeUInt16BE(1000, 0);
  return frame({ opcode: 0x8, payload });
};

/**
 * The close code RFC 6455 fixes for a single frame sent first on a fresh connection, the way
 * `ws` checks a frame (RSV, opcode, control rules, mask, then length, then UTF-8); undefined
 * when the frame is acceptable or its fate depends on bytes that were not sent.
 */
function expectedCode(
  spec: Required<Pick<FrameSpec, "fin" | "rsv" | "opcode" | "masked">> & { payload: Uint8Array; declared: bigint; form: 7 | 16 | 64 },
): number | undefined {
  const control = spec.opcode >= 0x8 && spec.opcode <= 0xa;
  const data = spec.opcode === 0x1 || spec.opcode === 0x2;
  const lengthField = spec.form === 7 ? Number(spec.declared & 0x7fn) : spec.form === 16 ? 126 : 127;
  if (spec.rsv !== 0) return 1002;
  if (!control && !data) return 1002; // reserved opcodes, and a continuation with nothing to continue
  if (control && (!spec.fin || lengthField > 125 || (spec.opcode === 0x8 && lengthField === 1))) return 1002;
  if (!spec.masked) return 1002;
  const value = spec.form === 7 ? BigInt(lengthField) : spec.form === 16 ? spec.declared & 0xffffn : spec.declared & 0xffff_ffff_ffff_ffffn;
  if (spec.form === 64 && value >> 32n > 2n ** 21n - 1n) return 1009;
  if (data && value > BigInt(maxFrameBytes)) return 1009;
  const complete = value === BigInt(spec.payload.length);
  if (complete && spec.fin && spec.opcode === 0x1 && !isUtf8(spec.payload)) return 1007;
  if (complete && spec.opcode === 0x8 && spec.payload.length >= 2) {
    const code = Buffer.from(spec.payload).readUInt16BE(0);
    const allowed = (code >= 1000 && code <= 1014 && ![1004, 1005, 1006].includes(code)) || (code >= 3000 && code <= 4999);
    if (!allowed) return 1002;
    if (!isUtf8(spec.payload.subarray(2))) return 1007;
  }
  return undefined;
}

function isUtf8(bytes: Uint8Array): boolean {
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/** Bytes the kernel may hold between the server and a client that does not read (Linux). */
function kernelBufferBound(): number {
  const maxOf = (path: string, index: number, fallback: number): number => {
    try {
      return Number(readFileSync(path, "utf8").trim().split(/\s+/)[index]) || fallback;
    } catch {
      return fallback;
    }
  };
  // The server's send buffer may grow to tcp_wmem's max; the client's receive buffer grows
  // only as its owner reads, so it stays near tcp_rmem's default.
  return maxOf("/proc/sys/net/ipv4/tcp_wmem", 2, 4 << 20) + 4 * maxOf("/proc/sys/net/ipv4/tcp_rmem", 1, 128 << 10);
}

describe.each(backends)("WebSocket raw frames on %s", (backend) => {
  const env = useService(backend, { agentVia: "grpc" });
  const open: RawWs[] = [];
  afterEach(() => {
    for (const raw of open.splice(0)) raw.destroy();
  });

  async function upgraded(agent: TestAgent): Promise<RawWs> {
    const raw = await RawWs.open(env.service.port, { token: agent.token });
    open.push(raw);
    expect(raw.status, "the upgrade is accepted").toBe(101);
    return raw;
  }

  /** The service still answers: liveness, an RPC of the agent, and a new WebSocket's ack. */
  async function stillServing(agent: TestAgent): Promise<void> {
    const health = await fetch(`${env.url}/healthz`, { signal: AbortSignal.timeout(10_000) });
    expect(health.status).toBe(200);
    await agent.talks.listTalks({});
    const raw = await upgraded(agent);
    await raw.write(
      frame({ opcode: 0x1, payload: text(JSON.stringify({ type: "subscribe", topics: [`agent_id:${agent.id}:talk_chat:*`] })) }),
    );
    await vi.waitFor(() => expect(raw.texts.length > 0 || raw.ended, "an ack").toBe(true), { timeout: 10_000, interval: 20 });
    expect(raw.texts[0]).toMatchObject({ type: "ack", action: "subscribe" });
    raw.destroy();
  }

  const big = Buffer.alloc(1_000, 0x61);
  const cases: { name: string; bytes: () => Buffer; code: number }[] = [
    {
      name: "a frame over the size limit",
      bytes: () => frame({ opcode: 0x1, payload: big, declared: BigInt(maxFrameBytes + 1) }),
      code: 1009,
    },
    { name: "a payload length over 2^53", bytes: () => frame({ opcode: 0x2, payload: big, declared: 2n ** 60n, form: 64 }), code: 1009 },
    {
      name: "fragments that together pass the size limit",
      bytes: () =>
        Buffer.concat([
          frame({ opcode: 0x1, fin: false, payload: Buffer.alloc(40_000, 0x61) }),
          frame({ opcode: 0x0, fin: false, payload: Buffer.alloc(40_000, 0x61) }),
        ]),
      code: 1009,
    },
    {
      name: "invalid UTF-8 in a text frame",
      bytes: () => frame({ opcode: 0x1, payload: Buffer.from([0x7b, 0xc3, 0x28, 0x7d]) }),
      code: 1007,
    },
    {
      name: "invalid UTF-8 across fragments",
      bytes: () =>
        Buffer.concat([
          frame({ opcode: 0x1, fin: false, payload: Buffer.from([0xe2, 0x82]) }),
          frame({ opcode: 0x0, payload: Buffer.from([0x41]) }),
        ]),
      code: 1007,
    },
    {
      name: "invalid UTF-8 in a close reason",
      bytes: () => frame({ opcode: 0x8, payload: Buffer.from([0x03, 0xe8, 0xff, 0xfe]) }),
      code: 1007,
    },
    { name: "an unmasked client frame", bytes: () => frame({ opcode: 0x1, masked: false, payload: text("{}") }), code: 1002 },
    { name: "reserved data opcode 0x3", bytes: () => frame({ opcode: 0x3, payload: text("{}") }), code: 1002 },
    { name: "reserved control opcode 0xB", bytes: () => frame({ opcode: 0xb }), code: 1002 },
    { name: "RSV1 without permessage-deflate", bytes: () => frame({ opcode: 0x1, rsv: 0b100, payload: text("{}") }), code: 1002 },
    { name: "RSV2 and RSV3", bytes: () => frame({ opcode: 0x1, rsv: 0b011, payload: text("{}") }), code: 1002 },
    { name: "a continuation with nothing to continue", bytes: () => frame({ opcode: 0x0, payload: text("{}") }), code: 1002 },
    { name: "a fragmented ping", bytes: () => frame({ opcode: 0x9, fin: false }), code: 1002 },
    { name: "a ping over 125 bytes", bytes: () => frame({ opcode: 0x9, payload: Buffer.alloc(126) }), code: 1002 },
    { name: "a close frame of one byte", bytes: () => frame({ opcode: 0x8, payload: Buffer.from([0x03]) }), code: 1002 },
    { name: "a close frame with an invalid code", bytes: () => frame({ opcode: 0x8, payload: Buffer.from([0x03, 0xed]) }), code: 1002 },
    {
      name: "a new message inside a fragmented one",
      bytes: () => Buffer.concat([frame({ opcode: 0x1, fin: false, payload: text("{") }), frame({ opcode: 0x1, payload: text("}") })]),
      code: 1002,
    },
  ];

  it.each(cases)("closes only the socket that sent $name ($code), and goes on serving", async ({ bytes, code }) => {
    const customer = newCustomer();
    const agent = await env.agent(customer, "Ann");
    const bystander = await upgraded(agent);
    const raw = await upgraded(agent);
    await raw.write(bytes());
    const close = await raw.closed();
    expect(close?.code, `close frame ${JSON.stringify(close)}`).toBe(code);
    await vi.waitFor(() => expect(raw.ended, "the connection to end").toBe(true), { timeout: 15_000, interval: 20 });
    // The other socket of the same agent is untouched and still answers.
    await bystander.write(frame({ opcode: 0x1, payload: text("not json") }));
    await vi.waitFor(() => expect(bystander.texts.length > 0 || bystander.ended, "an error frame on the other socket").toBe(true), {
      timeout: 10_000,
      interval: 20,
    });
    expect(bystander.texts[0]).toMatchObject({ type: "error", code: "invalid_argument" });
    expect(bystander.close).toBeUndefined();
    await stillServing(agent);
  });

  it("goes on serving after clients reset their connections in the middle of the upgrade", async () => {
    const agent = await env.agent(newCustomer(), "Gone");
    for (let i = 0; i < 20; i++) {
      const socket = connect({ host: "127.0.0.1", port: env.service.port });
      socket.on("error", () => undefined);
      await new Promise<void>((resolve) => socket.once("connect", resolve));
      const request =
        `GET /v1.0/ws?token=${agent.token} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}\r\nSec-WebSocket-Version: 13\r\n\r\n`;
      // Cut at different points: inside the head, right after it, or with a frame pipelined.
      const cut = [request.slice(0, 40), request, request + frame({ opcode: 0x1, payload: text("{}") }).toString("latin1")][i % 3]!;
      socket.write(Buffer.from(cut, "latin1"));
      socket.resetAndDestroy();
    }
    await stillServing(agent);
  });

  it("answers random subscribe and unsubscribe frames with acks and client error codes, never internal (fuzz)", {
    timeout: 90_000,
  }, async () => {
    const customer = newCustomer();
    const agent = await env.agent(customer, "Topics");
    const other = await env.agent(customer, "Other");
    const chatId = must((await agent.talks.createTalk({ type: "group", participantIds: [other.id] })).talk).id;
    const raw = await upgraded(agent);
    const clientCodes = new Set(["invalid_argument", "permission_denied", "not_found", "resource_exhausted", "out_of_range"]);
    const part = fc.oneof(
      fc.constantFrom(
        "agent_id",
        "customer_id",
        "talk_chat",
        "*",
        "",
        agent.id,
        agent.customerId,
        other.id,
        chatId,
        chatId.toUpperCase(),
        "__proto__",
        "constructor",
      ),
      fc.uuid(),
      fc.string({ maxLength: 30 }),
    );
    const topic = fc.oneof(
      fc.array(part, { minLength: 1, maxLength: 5 }).map((parts) => parts.join(":")),
      fc.string({ maxLength: 60 }),
    );
    const frameArb = fc.record(
      {
        type: fc.oneof({ weight: 4, arbitrary: fc.constantFrom("subscribe", "unsubscribe") }, { weight: 1, arbitrary: fc.anything() }),
        topics: fc.oneof({ weight: 4, arbitrary: fc.array(topic, { maxLength: 6 }) }, { weight: 1, arbitrary: fc.anything() }),
        after_seq: fc.oneof(fc.integer({ min: -5, max: 50 }), fc.double(), fc.string({ maxLength: 5 }), fc.constant(2 ** 60)),
        __proto__: fc.anything(),
      },
      { requiredKeys: [] },
    );
    const numRuns = 100;
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(frameArb, async (request) => {
        runs += 1;
        const from = raw.frames.length;
        const sentinel = `sentinel-${runs}`;
        await raw.write(frame({ opcode: 0x1, payload: text(JSON.stringify(request)) }));
        // Frames are answered in order: the sentinel's ack comes after every answer to this one.
        await raw.write(frame({ opcode: 0x1, payload: text(JSON.stringify({ type: "unsubscribe", topics: [sentinel] })) }));
        await vi.waitFor(
          () =>
            expect(
              raw.ended || raw.frames.slice(from).some((f) => f.opcode === 0x1 && f.payload.includes(sentinel)),
              "the sentinel's ack",
            ).toBe(true),
          { timeout: 10_000, interval: 20 },
        );
        expect(raw.close, "the socket stays open").toBeUndefined();
      }),
      { numRuns, endOnFailure: true },
    );
    expect(runs).toBe(numRuns);
    const errors = raw.texts.filter((f) => f["type"] === "error");
    for (const error of errors) expect(clientCodes, JSON.stringify(error)).toContain(error["code"]);
    expect(raw.texts.filter((f) => f["type"] === "ack").length).toBeGreaterThanOrEqual(numRuns);
    await stillServing(agent);
  });

  it("survives random frames: headers, opcodes, lengths, mask bits and payloads (fuzz)", { timeout: 90_000 }, async () => {
    const customer = newCustomer();
    const agent = await env.agent(customer, "Fuzz");
    const numRuns = 60;
    let runs = 0;
    const closes = new Map<number | undefined, number>();
    const frameArb = fc.record({
      fin: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
      rsv: fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 7 }) }),
      opcode: fc.oneof(
        { weight: 3, arbitrary: fc.constantFrom(0x1, 0x2, 0x8, 0x9, 0xa) },
        { weight: 1, arbitrary: fc.integer({ min: 0, max: 15 }) },
      ),
      masked: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
      payload: fc.oneof(
        fc.uint8Array({ maxLength: 200 }),
        fc.json({ maxDepth: 3 }).map((json) => new TextEncoder().encode(json)),
        fc
          .constantFrom(`{"type":"subscribe","topics":["garbage"]}`, `{"type":"unsubscribe","topics":[]}`)
          .map((s) => new TextEncoder().encode(s)),
      ),
      length: fc.oneof(
        { weight: 4, arbitrary: fc.constant<{ form?: 16 | 64; value?: bigint }>({}) },
        { weight: 1, arbitrary: fc.record({ form: fc.constant<16>(16), value: fc.bigInt({ min: 0n, max: 0xffffn }) }) },
        { weight: 1, arbitrary: fc.record({ form: fc.constant<64>(64), value: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }) }) },
      ),
      mask: fc.uint8Array({ minLength: 4, maxLength: 4 }),
      // biome-ignore lint/suspicious/noThenProperty: what the client does after the frame; the record is never awaited
      then: fc.constantFrom("end", "close", "ping"),
    });
    await fc.assert(
      fc.asyncProperty(frameArb, async (spec) => {
        runs += 1;
        const declared = spec.length.value ?? BigInt(spec.payload.length);
        const form = spec.length.form ?? (declared <= 125n ? 7 : declared <= 0xffffn ? 16 : 64);
        const bytes = frame({ ...spec, declared, form });
        const expected = expectedCode({ ...spec, declared, form });
        const raw = await upgraded(agent);
        try {
          await raw.write(bytes).catch(() => undefined);
          // Then end politely or not; a frame still waiting for bytes sees these as its payload.
          if (spec.then === "close") await raw.write(closeFrame()).catch(() => undefined);
          if (spec.then === "ping") await raw.write(frame({ opcode: 0x9, payload: text("p") })).catch(() => undefined);
          if (!raw.ended) raw.socket.end();
          if (expected !== undefined) {
            const close = await raw.closed();
            expect(close?.code, `close after ${bytes.subarray(0, 16).toString("hex")}`).toBe(expected);
          }
          await vi.waitFor(() => expect(raw.ended || raw.close !== undefined, "the socket to close").toBe(true), {
            timeout: 15_000,
            interval: 20,
          });
          closes.set(raw.close?.code, (closes.get(raw.close?.code) ?? 0) + 1);
        } finally {
          raw.destroy();
        }
        const health = await fetch(`${env.url}/healthz`, { signal: AbortSignal.timeout(10_000) });
        expect(health.status).toBe(200);
      }),
      { numRuns, endOnFailure: true },
    );
    expect(runs).toBe(numRuns);
    // The codes seen are only the ones a server may send for a client's frames.
    for (const code of closes.keys()) {
      if (code !== undefined) expect([1000, 1001, 1002, 1003, 1007, 1008, 1009, 1011, 1012], `close code ${code}`).toContain(code);
    }
    await stillServing(agent);
  });
});

describe.each(backends)("WebSocket backpressure on %s", (backend) => {
  // One stream per agent, so that the held subscription shows from outside when it is released.
  const env = useService(backend, { abuse: { ...noAbuseLimits, streamsPerAgent: 1 }, agentVia: "grpc" });

  /** Whether the agent's one stream is free: a WatchEvents opens (then is cancelled). */
  async function streamFree(agent: TestAgent): Promise<boolean> {
    const controller = new AbortController();
    try {
      for await (const response of agent.talks.watchEvents({ cursor: "" }, { signal: controller.signal })) {
        void response;
        return true;
      }
      return true;
    } catch (error) {
      if (ConnectError.from(error).code === Code.ResourceExhausted) return false;
      throw error;
    } finally {
      controller.abort();
    }
  }

  it("closes a client that floods frames and never reads with 1008, after at most the documented unread bytes", {
    timeout: 90_000,
  }, async () => {
    const customer = newCustomer();
    const agent = await env.agent(customer, "Slow");
    const raw = await RawWs.open(env.service.port, { token: agent.token });
    try {
      expect(raw.status).toBe(101);
      await raw.write(
        frame({ opcode: 0x1, payload: text(JSON.stringify({ type: "subscribe", topics: [`agent_id:${agent.id}:talk_chat:*`] })) }),
      );
      await vi.waitFor(
        () =>
          expect(
            raw.texts.some((f) => f["type"] === "ack"),
            "the ack",
          ).toBe(true),
        { timeout: 10_000, interval: 20 },
      );
      expect(await streamFree(agent), "the socket's subscription holds the agent's one stream").toBe(false);
      // From now on the client reads nothing.
      raw.socket.pause();
      const before = raw.bytesReceived;
      // Each frame asks for 100 error frames of ~300 bytes: ~30 KB of answers per ~15 KB sent.
      const topics = Array.from({ length: 100 }, (_, i) => `agent_id:${randomUUID()}:talk_chat:${"x".repeat(60)}${i}`);
      const flood = frame({ opcode: 0x1, payload: text(JSON.stringify({ type: "subscribe", topics })) });
      const kernel = kernelBufferBound();
      const frames = Math.ceil((3 * (kernel + maxBufferedBytes)) / (100 * 250));
      let released = false;
      for (let i = 0; i < frames && !released; i++) {
        await raw.write(flood);
        if (i % 50 === 49) released = await streamFree(agent);
      }
      // The server gives up on the client: its subscription is ended at once, which shows here.
      await expect
        .poll(async () => released || (released = await streamFree(agent)), {
          timeout: 30_000,
          interval: 20,
          message: "the flooded socket's subscription to end",
        })
        .toBe(true);
      // Reading again, the client finds what was queued, then the close frame.
      raw.socket.resume();
      const close = await raw.closed(30_000);
      expect(close?.code, JSON.stringify(close)).toBe(1008);
      expect(close?.reason).toContain("reads too slowly");
      const unread = raw.bytesReceived - before;
      expect(unread, `bytes queued for the client (${unread})`).toBeLessThan(kernel + 2 * maxBufferedBytes + 256 * 1024);
      const health = await fetch(`${env.url}/healthz`, { signal: AbortSignal.timeout(10_000) });
      expect(health.status).toBe(200);
    } finally {
      raw.destroy();
    }
  });

  it("stops reading a client's frames while many wait for an answer, and answers them all in order", async () => {
    const customer = newCustomer();
    const agent = await env.agent(customer, "Busy");
    const raw = await RawWs.open(env.service.port, { token: agent.token });
    try {
      expect(raw.status).toBe(101);
      const count = 300;
      const batch = Buffer.concat(
        Array.from({ length: count }, (_, i) =>
          frame({ opcode: 0x1, payload: text(JSON.stringify({ type: "unsubscribe", topics: [`t${i}`] })) }),
        ),
      );
      await raw.write(batch);
      await vi.waitFor(() => expect(raw.texts.length >= count || raw.ended, `${count} acks (${raw.texts.length})`).toBe(true), {
        timeout: 20_000,
        interval: 20,
      });
      expect(raw.texts.map((f) => (f["topics"] as string[])[0])).toEqual(Array.from({ length: count }, (_, i) => `t${i}`));
      expect(raw.close).toBeUndefined();
    } finally {
      raw.destroy();
    }
  });
});
