/**
 * TLS on the public port (TALKHUB_TLS_CERT / TALKHUB_TLS_KEY): a Talkhub process started with a
 * self-signed certificate made here by `openssl` (subjectAltName IP:127.0.0.1 and DNS:localhost)
 * serves every protocol over TLS, h2 and HTTP/1.1 by ALPN, to clients that trust only that
 * certificate: grpc-js, Connect-Node (gRPC, Connect and gRPC-Web), curl, `ws` (wss) and Chromium.
 * Plaintext on that port fails cleanly and leaves the process serving; a half or unreadable
 * configuration stops the start with one line naming the variable or the file.
 *
 * Without /usr/bin/chromium the browser case is skipped loudly; under CI=true it fails.
 */
import { execFile } from "node:child_process";
import { createHash, randomUUID, X509Certificate } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { Code, ConnectError, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { Http2SessionManager, createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { chromiumPath, launchChromium } from "../support/chromium.js";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import WebSocket from "ws";
import { MessageService } from "../../gen/talk/v1/message_service_pb.js";
import { TalkService } from "../../gen/talk/v1/talk_service_pb.js";
import { toolPresent } from "../support/external-tools.js";
import { newAgent, newSecret, spawnTalkhub, type AgentIdentity, type TalkhubProcess } from "../support/processes.js";

const repo = fileURLToPath(new URL("../..", import.meta.url));
const run = promisify(execFile);
const haveChromium = toolPresent("TLS in Chromium", "chromium", existsSync(chromiumPath), "apt-get install -y chromium");

/** A self-signed certificate for 127.0.0.1 and localhost, and its key, in `dir`. */
async function selfSigned(dir: string): Promise<{ certFile: string; keyFile: string }> {
  const certFile = join(dir, "cert.pem");
  const keyFile = join(dir, "key.pem");
  await run("openssl", [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-keyout",
    keyFile,
    "-out",
    certFile,
    "-days",
    "2",
    "-subj",
    "/CN=localhost",
    "-addext",
    "subjectAltName=IP:127.0.0.1,DNS:localhost",
  ]);
  return { certFile, keyFile };
}

/** Runs curl and returns its stdout (it ends with what -w wrote); a failure rejects with curl's exit code. */
async function curl(args: readonly string[]): Promise<string> {
  const { stdout } = await run("curl", ["-sS", "--max-time", "20", ...args]);
  return stdout;
}

/** curl's exit status for a call expected to fail. */
async function curlFails(args: readonly string[]): Promise<number> {
  try {
    await curl(args);
  } catch (error) {
    return (error as { code: number }).code;
  }
  throw new Error(`curl ${args.join(" ")} succeeded`);
}

/** The error message of a start expected to fail. */
async function startFailure(env: Record<string, string>): Promise<string> {
  try {
    const started = await spawnTalkhub(env, 120_000);
    await started.stop();
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error("Talkhub started");
}

const bearer =
  (token: string): Interceptor =>
  (next) =>
  async (request) => {
    request.header.set("authorization", `Bearer ${token}`);
    return next(request);
  };

type Callback = (error: grpc.ServiceError | null, response?: unknown) => void;
type UnaryMethod = (request: object, metadata: grpc.Metadata, callback: Callback) => grpc.ClientUnaryCall;

function unary<T>(client: grpc.Client, method: string, request: object, metadata: grpc.Metadata): Promise<T> {
  const fn = (client as unknown as Record<string, UnaryMethod | undefined>)[method];
  if (fn === undefined) throw new Error(`no method ${method}`);
  return new Promise<T>((resolve, reject) => {
    fn.call(client, request, metadata, (error, response) => (error === null ? resolve(response as T) : reject(error)));
  });
}

describe("TLS on the public port", () => {
  let dir: string;
  let certFile: string;
  let keyFile: string;
  let ca: Buffer;
  let talkhub: TalkhubProcess;
  let base: string;
  let ann: AgentIdentity;
  let bob: AgentIdentity;
  let chatId: string;
  const sessions: Http2SessionManager[] = [];

  /** Connect-Node over h2, trusting only the test's certificate. */
  const h2 = (kind: "grpc" | "connect", token: string): Transport => {
    const sessionManager = new Http2SessionManager(base, undefined, { ca });
    sessions.push(sessionManager);
    const options = { baseUrl: base, httpVersion: "2" as const, sessionManager, interceptors: [bearer(token)] };
    return kind === "grpc" ? createGrpcTransport(options) : createConnectTransport(options);
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "talkhub-tls-"));
    ({ certFile, keyFile } = await selfSigned(dir));
    ca = await readFile(certFile);
    const secret = newSecret();
    talkhub = await spawnTalkhub(
      { TALKHUB_TLS_CERT: certFile, TALKHUB_TLS_KEY: keyFile, TALKHUB_JWT_SECRET: secret, TALKHUB_LOG_LEVEL: "warn" },
      150_000,
    );
    base = `https://127.0.0.1:${talkhub.port}`;
    const customer = randomUUID();
    [ann, bob] = await Promise.all([newAgent(secret, customer, "Ann"), newAgent(secret, customer, "Bob")]);
    // Each agent's first call enters it into the directory.
    await createClient(TalkService, h2("grpc", bob.token)).listTalks({});
    const created = await createClient(TalkService, h2("grpc", ann.token)).createTalk({ participantIds: [bob.id] });
    chatId = created.talk?.id ?? "";
    expect(chatId).not.toBe("");
  }, 240_000);

  afterAll(async () => {
    for (const session of sessions) session.abort();
    await talkhub?.stop();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it("says so on its listening line", () => {
    expect(talkhub.stdout()).toMatch(/Talkhub listening on :\d+ over TLS/);
  });

  it("serves grpc-js with createSsl(ca), and grpc-js refuses it without the certificate", async () => {
    const definition = protoLoader.loadSync(["talk/v1/talk_service.proto", "talk/v1/message_service.proto"], {
      includeDirs: [join(repo, "proto"), join(repo, "third_party")],
      keepCase: true,
      longs: String,
      defaults: true,
    });
    const talkV1 = (grpc.loadPackageDefinition(definition)["talk"] as grpc.GrpcObject)["v1"] as grpc.GrpcObject;
    const Messages = talkV1["MessageService"] as grpc.ServiceClientConstructor;
    const Talks = talkV1["TalkService"] as grpc.ServiceClientConstructor;
    const address = `127.0.0.1:${talkhub.port}`;
    const metadata = new grpc.Metadata();
    metadata.set("authorization", `Bearer ${ann.token}`);

    const messages = new Messages(address, grpc.credentials.createSsl(ca));
    const byName = new Talks(`localhost:${talkhub.port}`, grpc.credentials.createSsl(ca));
    const untrusting = new Talks(address, grpc.credentials.createSsl());
    const plaintext = new Talks(address, grpc.credentials.createInsecure());
    try {
      const sent = await unary<{ message: { chat_id: string; text: string } }>(
        messages,
        "SendMessage",
        { chat_id: chatId, text: "over grpc-js and TLS" },
        metadata,
      );
      expect(sent.message).toMatchObject({ chat_id: chatId, text: "over grpc-js and TLS" });
      const talk = await unary<{ talk: { id: string } }>(byName, "GetTalk", { id: chatId }, metadata);
      expect(talk.talk.id).toBe(chatId);

      const refused = await unary(untrusting, "GetTalk", { id: chatId }, metadata).catch((error: grpc.ServiceError) => error);
      expect((refused as grpc.ServiceError).code, "an unknown certificate").toBe(grpc.status.UNAVAILABLE);
      const noTls = await unary(plaintext, "GetTalk", { id: chatId }, metadata).catch((error: grpc.ServiceError) => error);
      expect((noTls as grpc.ServiceError).code, "h2c on the TLS port").toBe(grpc.status.UNAVAILABLE);
    } finally {
      for (const client of [messages, byName, untrusting, plaintext]) client.close();
    }
  });

  it("serves Connect-Node: gRPC and Connect over h2, Connect and gRPC-Web over HTTP/1.1, and a WatchTalk stream", async () => {
    const sent: string[] = [];
    for (const [name, transport] of [
      ["gRPC h2", h2("grpc", ann.token)],
      ["Connect h2", h2("connect", ann.token)],
      [
        "Connect HTTP/1.1",
        createConnectTransport({ baseUrl: base, httpVersion: "1.1", nodeOptions: { ca }, interceptors: [bearer(ann.token)] }),
      ],
      [
        "gRPC-Web HTTP/1.1",
        createGrpcWebTransport({ baseUrl: base, httpVersion: "1.1", nodeOptions: { ca }, interceptors: [bearer(ann.token)] }),
      ],
    ] as const) {
      const reply = await createClient(MessageService, transport).sendMessage({ chatId, text: `over ${name}` });
      expect(reply.message?.text, name).toBe(`over ${name}`);
      sent.push(reply.message?.id ?? "");
    }
    expect(new Set(sent).size).toBe(4);

    // A server stream over TLS: Bob watches, Ann sends.
    const controller = new AbortController();
    const head = (await createClient(TalkService, h2("grpc", bob.token)).getTalk({ id: chatId })).talk?.lastSeq ?? 0n;
    const stream = createClient(TalkService, h2("grpc", bob.token)).watchTalk({ chatId, afterSeq: head }, { signal: controller.signal });
    const seen = (async () => {
      for await (const item of stream) {
        if (item.kind.case === "event" && item.kind.value.type === "message_created") return item.kind.value.seq;
      }
      return undefined;
    })().catch((error: unknown) => (controller.signal.aborted ? undefined : Promise.reject(error)));
    const watched = await createClient(MessageService, h2("connect", ann.token)).sendMessage({ chatId, text: "to the watcher" });
    await expect(Promise.race([seen, new Promise((resolve) => setTimeout(() => resolve("timeout"), 10_000))])).resolves.toBe(
      watched.message?.seq,
    );
    controller.abort();
  });

  it("serves curl over --http1.1 and --http2: health, Connect JSON and REST /v1.0; curl without the certificate is refused", async () => {
    for (const [flag, version] of [
      ["--http1.1", "1.1"],
      ["--http2", "2"],
    ] as const) {
      for (const host of ["127.0.0.1", "localhost"]) {
        const url = `https://${host}:${talkhub.port}`;
        expect(await curl([flag, "--cacert", certFile, "-w", " %{http_version}", `${url}/healthz`]), `${flag} ${host}`).toBe(
          `{"status":"ok"} ${version}`,
        );
      }
      const connect = await curl([
        flag,
        "--cacert",
        certFile,
        "-w",
        "\n%{http_version}",
        "-H",
        "content-type: application/json",
        "-H",
        `authorization: Bearer ${ann.token}`,
        "-d",
        JSON.stringify({ id: chatId }),
        `${base}/talk.v1.TalkService/GetTalk`,
      ]);
      const [body, negotiated] = connect.split("\n");
      expect(negotiated, `${flag} Connect`).toBe(version);
      expect(JSON.parse(body ?? "{}")).toMatchObject({ talk: { id: chatId } });

      const restSend = await curl([
        flag,
        "--cacert",
        certFile,
        "-w",
        "\n%{http_version} %{http_code}",
        "-H",
        "content-type: application/json",
        "-H",
        `authorization: Bearer ${ann.token}`,
        "-d",
        JSON.stringify({ text: `REST ${flag}` }),
        `${base}/v1.0/talks/${chatId}/messages`,
      ]);
      const [restBody, restStatus] = restSend.split("\n");
      expect(restStatus, `${flag} REST`).toBe(`${version} 200`);
      expect(JSON.parse(restBody ?? "{}")).toMatchObject({ chat_id: chatId, text: `REST ${flag}` });
    }
    // curl exit 60: the peer's certificate is not trusted. It is TLS, and not a known CA's.
    expect(await curlFails(["--http2", `${base}/healthz`])).toBe(60);
  });

  it("serves a wss WebSocket subscription", async () => {
    const socket = new WebSocket(`wss://localhost:${talkhub.port}/v1.0/ws?token=${encodeURIComponent(bob.token)}`, { ca });
    const frames: Record<string, unknown>[] = [];
    socket.on("message", (data: Buffer) => frames.push(JSON.parse(data.toString()) as Record<string, unknown>));
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once("open", () => resolve());
        socket.once("error", reject);
      });
      const topic = `agent_id:${bob.id}:talk_chat:${chatId}`;
      socket.send(JSON.stringify({ type: "subscribe", topics: [topic] }));
      await vi.waitFor(() => expect(frames.find((f) => f["type"] === "ack")).toMatchObject({ action: "subscribe", topics: [topic] }), {
        timeout: 10_000,
      });
      const sent = await createClient(MessageService, h2("grpc", ann.token)).sendMessage({ chatId, text: "over wss" });
      await vi.waitFor(
        () =>
          expect(frames.find((f) => f["topic"] === topic && f["type"] === "message_created")).toMatchObject({
            seq: Number(sent.message?.seq),
            message_created: { text: "over wss" },
          }),
        { timeout: 10_000 },
      );
    } finally {
      socket.terminate();
    }
  });

  it.runIf(haveChromium)(
    "serves Chromium, which trusts the certificate by its key: the console page and a Connect call, over h2",
    async () => {
      const index = join(repo, "web/dist/index.html");
      if (!existsSync(index)) {
        // The console as `npm run build:web` makes it (the console e2e test builds it the same way).
        await run(
          process.execPath,
          [join(repo, "node_modules/vite/bin/vite.js"), "build", "--config", "web/vite.config.ts", "--logLevel", "warn"],
          { cwd: repo, timeout: 150_000 },
        );
      }
      // Chromium accepts a certificate whose public key hash is listed (it needs its own user data
      // dir, which playwright gives every launch); any other certificate error still fails.
      const spki = new X509Certificate(ca).publicKey.export({ type: "spki", format: "der" });
      const pin = createHash("sha256").update(spki).digest("base64");
      const browser = await launchChromium([`--ignore-certificate-errors-spki-list=${pin}`]);
      try {
        const page = await browser.newPage();
        // The console's files: a build elsewhere may be rewriting web/dist this moment.
        await vi.waitFor(
          async () => {
            const response = await page.goto(`https://localhost:${talkhub.port}/`);
            expect(response?.status()).toBe(200);
            expect(response?.headers()["content-security-policy"]).toContain("default-src 'self'");
          },
          { timeout: 30_000, interval: 500 },
        );
        // Evaluated in the page (this project's TypeScript has no DOM types).
        expect(await page.evaluate('performance.getEntriesByType("navigation")[0].nextHopProtocol')).toBe("h2");
        const answer: unknown = await page.evaluate(`(async () => {
        const response = await fetch("/talk.v1.TalkService/GetTalk", {
          method: "POST",
          headers: { "content-type": "application/json", authorization: ${JSON.stringify(`Bearer ${ann.token}`)} },
          body: ${JSON.stringify(JSON.stringify({ id: chatId }))},
        });
        const body = await response.json();
        const protocol = performance.getEntriesByType("resource").at(-1)?.nextHopProtocol;
        return { status: response.status, body, protocol };
      })()`);
        expect(answer).toMatchObject({ status: 200, body: { talk: { id: chatId } }, protocol: "h2" });
      } finally {
        await browser.close();
      }
    },
    240_000,
  );

  it("answers plaintext on the TLS port with a clean failure and keeps serving", async () => {
    const http1 = await curl(["--http1.1", "-w", " %{http_code}", `http://127.0.0.1:${talkhub.port}/healthz`]);
    expect(http1).toBe("This port speaks TLS only: use https:// (or wss://).\n 400");
    // h2c with prior knowledge gets bytes that are no HTTP/2 (curl: 16, an HTTP/2 framing error, or 52 no reply).
    expect([16, 52, 56]).toContain(await curlFails(["--http2-prior-knowledge", `http://127.0.0.1:${talkhub.port}/healthz`]));
    const h2c = await createClient(
      TalkService,
      createGrpcTransport({ baseUrl: `http://127.0.0.1:${talkhub.port}`, interceptors: [bearer(ann.token)] }),
    )
      .getTalk({ id: chatId })
      .catch((error: unknown) => ConnectError.from(error));
    expect(h2c).toBeInstanceOf(ConnectError);
    expect([Code.Unavailable, Code.Internal, Code.Unknown]).toContain((h2c as ConnectError).code);

    expect(talkhub.alive()).toBe(true);
    const after = await createClient(TalkService, h2("grpc", ann.token)).getTalk({ id: chatId });
    expect(after.talk?.id).toBe(chatId);
  });
});

describe("TLS configuration errors stop the start in one line", () => {
  let dir: string;
  let certFile: string;
  let keyFile: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "talkhub-tls-bad-"));
    ({ certFile, keyFile } = await selfSigned(dir));
  });

  afterAll(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  const noStack = (message: string) => expect(message, "no stack trace").not.toMatch(/^\s+at /m);

  it("refuses a certificate without its key, and a key without its certificate, naming both variables", async () => {
    const certOnly = await startFailure({ TALKHUB_TLS_CERT: certFile });
    expect(certOnly).toContain("exited (code 1");
    expect(certOnly).toContain("Talkhub not started: TALKHUB_TLS_KEY: must be set with TALKHUB_TLS_CERT");
    noStack(certOnly);
    const keyOnly = await startFailure({ TALKHUB_TLS_KEY: keyFile });
    expect(keyOnly).toContain("exited (code 1");
    expect(keyOnly).toContain("Talkhub not started: TALKHUB_TLS_CERT: must be set with TALKHUB_TLS_KEY");
    noStack(keyOnly);
  }, 240_000);

  it("refuses a file it cannot read, naming the variable and the file", async () => {
    const missing = join(dir, "missing.pem");
    const absent = await startFailure({ TALKHUB_TLS_CERT: missing, TALKHUB_TLS_KEY: keyFile });
    expect(absent).toContain("exited (code 1");
    expect(absent).toContain(`Talkhub not started: TALKHUB_TLS_CERT: cannot read ${missing} (ENOENT)`);
    noStack(absent);

    const mismatched = join(dir, "other");
    await mkdir(mismatched);
    const other = await selfSigned(mismatched);
    const wrongKey = await startFailure({ TALKHUB_TLS_CERT: certFile, TALKHUB_TLS_KEY: other.keyFile });
    expect(wrongKey).toContain("exited (code 1");
    expect(wrongKey).toContain(`TALKHUB_TLS_CERT, TALKHUB_TLS_KEY: ${certFile} and ${other.keyFile} are not a usable certificate and key`);
    noStack(wrongKey);

    // A directory is no file either (EISDIR); root reads any mode, so no chmod case.
    const directory = await startFailure({ TALKHUB_TLS_CERT: certFile, TALKHUB_TLS_KEY: dir });
    expect(directory).toContain(`TALKHUB_TLS_KEY: cannot read ${dir} (EISDIR)`);
    noStack(directory);
  }, 180_000);
});
