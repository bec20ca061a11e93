/**
 * Slow and idle connections, from raw node:net and node:http2 clients: HTTP/1.1 headers and
 * bodies trickled byte by byte are cut, idle HTTP/2 sessions (and connections that send
 * nothing, or only the HTTP/2 preface) are closed, unauthenticated gRPC calls are refused from
 * their headers before their bodies are read, and request bodies that no token vouches for
 * are capped per HTTP/2 connection. Long-lived responses (the REST NDJSON stream, the
 * WebSocket, a gRPC stream) outlive every one of these timeouts. Services run with short
 * timeouts (config.http) so that the suite is quick; after each hostile client the service
 * must still answer.
 */
import { randomUUID } from "node:crypto";
import http2 from "node:http2";
import net from "node:net";
import { Duplex } from "node:stream";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { ConfigError, defaultHttpConfig, readConfig } from "../../src/config.js";
import { frameHead } from "../support/envelopes.js";
import { backends, sleep, TestEnv } from "../support/harness.js";
import { garbageCollector, RawConnectStream, WsClient } from "../support/live-helpers.js";
import { readLines } from "../support/rest-helpers.js";
import { grpcRaw, httpCall } from "../support/security-helpers.js";

const headersTimeoutMs = 400;
const requestTimeoutMs = 1_200;
const idleTimeoutMs = 1_000;
const unauthenticatedBytes = 1024 * 1024;
const maxRequestBytes = 4 * 1024 * 1024;
const MiB = 1024 * 1024;

/** One raw TCP connection that records what comes back and when it closes. */
class RawSocket {
  readonly socket: net.Socket;
  received = Buffer.alloc(0);
  closed = false;

  constructor(port: number) {
    this.socket = net.connect(port, "127.0.0.1");
    this.socket.on("data", (chunk: Buffer) => (this.received = Buffer.concat([this.received, chunk])));
    this.socket.on("error", () => undefined);
    this.socket.on("close", () => (this.closed = true));
  }

  get text(): string {
    return this.received.toString("latin1");
  }

  /** Writes `bytes` one at a time, `everyMs` apart, until they are all sent or the server hangs up; returns how many went out. */
  async trickle(bytes: Buffer, everyMs: number): Promise<number> {
    let sent = 0;
    while (sent < bytes.length && !this.closed && !this.socket.destroyed) {
      this.socket.write(bytes.subarray(sent, sent + 1));
      sent += 1;
      await sleep(everyMs);
    }
    return sent;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

/** A TCP connection that counts the bytes written to it (node:http2 writes a net.Socket's handle directly, uncounted). */
class CountingConnection extends Duplex {
  bytesWritten = 0;

  constructor(readonly socket: net.Socket) {
    super();
    socket.on("data", (chunk: Buffer) => {
      if (!this.push(chunk)) socket.pause();
    });
    socket.on("end", () => this.push(null));
    socket.on("close", () => this.destroy());
    socket.on("error", (error) => this.destroy(error));
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.bytesWritten += chunk.length;
    this.socket.write(chunk, callback);
  }

  override _final(callback: () => void): void {
    this.socket.end(callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.socket.destroy();
    callback(error);
  }
}

/**
 * An HTTP/2 client session on its own TCP connection, whose bytes sent are counted. Its session
 * memory is large: the client's own queued writes must not make it reset its streams itself.
 */
function h2Session(port: number): { session: http2.ClientHttp2Session; socket: CountingConnection } {
  const socket = new CountingConnection(net.connect(port, "127.0.0.1"));
  const session = http2.connect(`http://127.0.0.1:${port}`, { createConnection: () => socket, maxSessionMemory: 1_000 });
  session.on("error", () => undefined);
  return { session, socket };
}

/** A gRPC request that sends a message header declaring `declared` bytes, then `body` (and no end). */
interface Parked {
  readonly stream: http2.ClientHttp2Stream;
  grpcStatus: string | undefined;
  status: number | undefined;
  closed: boolean;
}

function park(session: http2.ClientHttp2Session, path: string, declared: number, body: Buffer, token?: string, end = false): Parked {
  const headers: http2.OutgoingHttpHeaders = { ":method": "POST", ":path": path, "content-type": "application/grpc+proto", te: "trailers" };
  if (token !== undefined) headers["authorization"] = `Bearer ${token}`;
  const stream = session.request(headers);
  const parked: Parked = { stream, grpcStatus: undefined, status: undefined, closed: false };
  stream.on("response", (h) => {
    parked.status = Number(h[":status"]);
    if (h["grpc-status"] !== undefined) parked.grpcStatus = String(h["grpc-status"]);
  });
  stream.on("trailers", (t) => (parked.grpcStatus ??= String(t["grpc-status"])));
  stream.on("error", () => undefined);
  stream.on("close", () => (parked.closed = true));
  stream.resume();
  stream.write(frameHead(declared));
  if (end) stream.end(body);
  else stream.write(body);
  return parked;
}

/** Live ArrayBuffer bytes (Buffers) of this process, after a collection when one can be had. */
function bufferBytes(): number {
  garbageCollector()?.();
  return process.memoryUsage().arrayBuffers;
}

describe("connection limits in the configuration", () => {
  it("reads every limit from the environment, with defaults", () => {
    const http = readConfig({
      TALKHUB_HEADERS_TIMEOUT_MS: "5000",
      TALKHUB_REQUEST_TIMEOUT_MS: "30000",
      TALKHUB_IDLE_TIMEOUT_MS: "10000",
      TALKHUB_UNAUTHENTICATED_BYTES_PER_CONNECTION: "1048576",
      TALKHUB_H2_SESSION_MEMORY_MB: "32",
    }).http;
    expect(http).toMatchObject({
      headersTimeoutMs: 5_000,
      requestTimeoutMs: 30_000,
      idleTimeoutMs: 10_000,
      unauthenticatedBytesPerConnection: MiB,
      maxSessionMemoryMb: 32,
    });
    const defaults = readConfig({}).http;
    expect(defaults).toMatchObject({
      headersTimeoutMs: defaultHttpConfig.headersTimeoutMs,
      requestTimeoutMs: defaultHttpConfig.requestTimeoutMs,
      unauthenticatedBytesPerConnection: defaultHttpConfig.unauthenticatedBytesPerConnection,
      maxSessionMemoryMb: defaultHttpConfig.maxSessionMemoryMb,
    });
  });

  it("refuses a headers timeout longer than the request timeout, and values out of range", () => {
    expect(() => readConfig({ TALKHUB_HEADERS_TIMEOUT_MS: "9000", TALKHUB_REQUEST_TIMEOUT_MS: "5000" })).toThrow(ConfigError);
    expect(() => readConfig({ TALKHUB_REQUEST_TIMEOUT_MS: "0" })).toThrow(/TALKHUB_REQUEST_TIMEOUT_MS/);
    expect(() => readConfig({ TALKHUB_UNAUTHENTICATED_BYTES_PER_CONNECTION: "10" })).toThrow(
      /TALKHUB_UNAUTHENTICATED_BYTES_PER_CONNECTION/,
    );
  });
});

describe.each(backends)("slow and idle connections on %s", (backend) => {
  const env = new TestEnv(backend, {
    agentVia: "grpc",
    http: { headersTimeoutMs, requestTimeoutMs, idleTimeoutMs, unauthenticatedBytesPerConnection: unauthenticatedBytes, maxRequestBytes },
    live: { heartbeatMs: 200 },
  });
  let token = "";
  let agentId = "";
  beforeAll(async () => {
    await env.start();
    ({ token, id: agentId } = await env.agent(randomUUID(), "Ann"));
  }, 120_000);
  afterAll(() => env.stop(), 60_000);

  const port = () => env.service.port;

  /** The service still answers, and a good call still works. */
  async function stillServing(): Promise<void> {
    expect((await httpCall(env.url, "GET", "/healthz", { timeoutMs: 5_000 })).status).toBe(200);
    const reply = await grpcRaw(env.url, "talk.v1.TalkService/ListTalks", new Uint8Array(0), token);
    expect(reply.grpcStatus).toBe(0);
  }

  describe("HTTP/1.1", () => {
    it("cuts a client that sends its request headers one byte at a time (408)", async () => {
      const client = new RawSocket(port());
      try {
        const head = Buffer.from(`GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ${"s".repeat(400)}\r\n\r\n`);
        // 50 ms a byte: the whole head would take 22 s; the server must hang up long before.
        const sent = await client.trickle(head, 50);
        await vi.waitFor(() => expect(client.closed).toBe(true), { timeout: 5_000 });
        expect(sent).toBeLessThan(head.length);
        expect(client.text).toMatch(/^HTTP\/1\.1 408/);
      } finally {
        client.destroy();
      }
      await stillServing();
    });

    it("cuts a request whose declared body is trickled (408), also with a valid token", async () => {
      const client = new RawSocket(port());
      try {
        const body = Buffer.from(JSON.stringify({ page_size: 10, padding: "p".repeat(300) }));
        client.socket.write(
          `POST /talk.v1.TalkService/ListTalks HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\n` +
            `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`,
        );
        const sent = await client.trickle(body, 50);
        await vi.waitFor(() => expect(client.closed).toBe(true), { timeout: 5_000 });
        expect(sent).toBeLessThan(body.length);
        expect(client.text).toMatch(/^HTTP\/1\.1 408/);
      } finally {
        client.destroy();
      }
      await stillServing();
    });

    it("closes a connection that sends nothing at all", async () => {
      const client = new RawSocket(port());
      try {
        await vi.waitFor(() => expect(client.closed).toBe(true), { timeout: 10_000 });
      } finally {
        client.destroy();
      }
    });

    it("keeps the REST NDJSON stream and the WebSocket open past the request timeout", async () => {
      const abort = new AbortController();
      const ws = new WsClient(`ws://127.0.0.1:${port()}/v1.0/ws?token=${token}`);
      try {
        const response = await fetch(`${env.url}/v1.0/events?token=${token}`, { signal: abort.signal });
        expect(response.status).toBe(200);
        await ws.opened;
        if (response.body === null) throw new Error("no body");
        await readLines(response.body, (lines) => lines.length >= 1);
        // Past the request timeout (and the checks' interval), both still carry data.
        await sleep(requestTimeoutMs * 2 + 500);
        const later = await readLines(response.body, (lines) => lines.some((line) => line.heartbeat !== undefined));
        expect(later.length).toBeGreaterThan(0);
        const from = ws.frames.length;
        ws.send({ type: "subscribe", topics: [`agent_id:${agentId}:talk_chat:*`] });
        await ws.waitFrame((frame) => frame["type"] === "ack", from);
        expect(ws.closed).toBe(false);
      } finally {
        abort.abort();
        ws.close();
      }
    });
  });

  describe("HTTP/2", () => {
    it("closes a session that has no open stream once it has been idle", async () => {
      const { session } = h2Session(port());
      let closed = false;
      session.on("close", () => (closed = true));
      try {
        const reply = await new Promise<string | undefined>((resolve) => {
          const stream = park(session, "/talk.v1.TalkService/ListTalks", 0, Buffer.alloc(0), token, true);
          stream.stream.on("close", () => resolve(stream.grpcStatus));
        });
        expect(reply).toBe("0");
        await vi.waitFor(() => expect(closed).toBe(true), { timeout: 10_000 });
      } finally {
        session.destroy();
      }
    });

    it("closes a connection that sends only the HTTP/2 preface", async () => {
      const client = new RawSocket(port());
      try {
        client.socket.write("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        await vi.waitFor(() => expect(client.closed).toBe(true), { timeout: 10_000 });
      } finally {
        client.destroy();
      }
    });

    it("keeps a session whose gRPC stream is open past the idle timeout", async () => {
      const stream = new RawConnectStream(env.url, token, "/talk.v1.TalkService/WatchEvents", new Uint8Array(0), "grpc");
      try {
        stream.read();
        await vi.waitFor(() => expect(stream.envelopes.length).toBeGreaterThan(0), { timeout: 10_000 });
        await sleep(idleTimeoutMs * 2 + 500);
        const seen = stream.envelopes.length;
        await vi.waitFor(() => expect(stream.envelopes.length).toBeGreaterThan(seen), { timeout: 5_000 });
        expect(stream.ended).toBe(false);
      } finally {
        stream.close();
      }
    });

    it("resets an open-service call whose body is trickled past the request timeout", async () => {
      const { session } = h2Session(port());
      try {
        // The health service needs no token; its message is announced and then trickled.
        const call = park(session, "/grpc.health.v1.Health/Check", 200, Buffer.alloc(0));
        let sent = 0;
        while (sent < 200 && !call.closed) {
          call.stream.write(Buffer.alloc(1));
          sent += 1;
          await sleep(50);
        }
        await vi.waitFor(() => expect(call.closed).toBe(true), { timeout: 5_000 });
        expect(sent).toBeLessThan(200);
        expect(call.stream.rstCode).toBe(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
      } finally {
        session.destroy();
      }
      await stillServing();
    });

    it("refuses a 4 MiB gRPC call without a token from its headers, having read a small part of its body", async () => {
      const { session, socket } = h2Session(port());
      try {
        const body = Buffer.alloc(maxRequestBytes - 16, 7);
        const call = park(session, "/talk.v1.TalkService/ListTalks", body.length, body, undefined, true);
        await vi.waitFor(() => expect(call.closed).toBe(true), { timeout: 10_000 });
        expect(call.grpcStatus).toBe("16");
        expect(socket.bytesWritten).toBeLessThan(MiB);
      } finally {
        session.destroy();
      }
      await stillServing();
    });

    it("refuses streams parking partial 4 MiB messages without a token, without buffering them", async () => {
      const before = bufferBytes();
      const { session, socket } = h2Session(port());
      const streams = 100;
      const partial = Buffer.alloc(MiB, 1);
      try {
        const calls = Array.from({ length: streams }, () =>
          park(session, "/talk.v1.MessageService/SendMessage", maxRequestBytes - 16, partial),
        );
        await vi.waitFor(() => expect(calls.filter((call) => call.closed).length).toBe(streams), { timeout: 10_000 });
        expect(new Set(calls.map((call) => call.grpcStatus))).toEqual(new Set(["16"]));
        // 100 MiB offered; what was taken in is at most the flow-control windows.
        expect(socket.bytesWritten).toBeLessThan(8 * MiB);
        expect(bufferBytes() - before).toBeLessThan(32 * MiB);
      } finally {
        session.destroy();
      }
      await stillServing();
    });

    it("resets open-service streams once a connection's unauthenticated bodies pass the cap", async () => {
      const before = bufferBytes();
      const { session, socket } = h2Session(port());
      const streams = 40;
      const partial = Buffer.alloc(MiB, 1);
      try {
        // The health service needs no token: its bodies count against the connection's cap.
        const calls = Array.from({ length: streams }, () => park(session, "/grpc.health.v1.Health/Check", maxRequestBytes - 16, partial));
        await vi.waitFor(() => expect(calls.filter((call) => call.closed).length).toBe(streams), { timeout: 15_000 });
        expect(calls.filter((call) => call.stream.rstCode === http2.constants.NGHTTP2_ENHANCE_YOUR_CALM).length).toBeGreaterThan(0);
        // 40 MiB offered, at most the cap plus the flow-control windows taken in.
        expect(socket.bytesWritten).toBeLessThan(unauthenticatedBytes + 16 * MiB);
        expect(bufferBytes() - before).toBeLessThan(32 * MiB);
      } finally {
        session.destroy();
      }
      await stillServing();
    });
  });

  describe("Connect and gRPC-Web over HTTP/1.1", () => {
    /** Sends the head and a part of a large body, and reads the answer that comes before the rest. */
    async function partialPost(path: string, contentType: string, extra: string, prefix: Buffer, answered: RegExp): Promise<string> {
      const client = new RawSocket(port());
      const declared = maxRequestBytes - 16;
      try {
        client.socket.write(
          `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: ${contentType}\r\n${extra}Content-Length: ${declared}\r\n\r\n`,
        );
        client.socket.write(prefix);
        client.socket.write(Buffer.alloc(64 * 1024, 0x20));
        // The rest of the body is never sent: the answer must come without it.
        await vi.waitFor(() => expect(client.text).toMatch(answered), { timeout: 5_000 });
        return client.text;
      } finally {
        client.destroy();
      }
    }

    it("answers a Connect call without a token 401 before its body has arrived", async () => {
      const reply = await partialPost(
        "/talk.v1.TalkService/ListTalks",
        "application/json",
        "Connect-Protocol-Version: 1\r\n",
        Buffer.alloc(0),
        /unauthenticated/,
      );
      expect(reply).toMatch(/^HTTP\/1\.1 401/);
      await stillServing();
    });

    it("answers a gRPC-Web call without a token UNAUTHENTICATED before its body has arrived", async () => {
      const reply = await partialPost(
        "/talk.v1.TalkService/ListTalks",
        "application/grpc-web+proto",
        "",
        frameHead(maxRequestBytes - 32),
        /grpc-status:\s?\d+/i,
      );
      expect(reply).toMatch(/^HTTP\/1\.1 200/);
      expect(reply).toMatch(/grpc-status:\s?16/i);
      await stillServing();
    });
  });
});
