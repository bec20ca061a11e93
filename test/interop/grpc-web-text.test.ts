/**
 * gRPC-Web in text mode (application/grpc-web-text: the frames as base64 both ways), as
 * Google's grpc-web runtime speaks it: the mode its clients need for server streams. The
 * runtime is driven through a stub of the generated shape (test/support/grpc-web-stub.ts).
 * Under Node, with xhr2 as the XMLHttpRequest: unary calls with a bearer token, errors with
 * their code and message, a WatchTalk stream that receives the messages sent while it is open,
 * and its cancel ending the stream on the server; on the wire, a request in separately padded
 * base64 pieces. In Debian's Chromium, the stub bundled into a page of another origin makes
 * unary and streaming calls through CORS.
 */
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { Agent, createServer, type Server } from "node:http";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { build } from "esbuild";
import { RpcError, StatusCode, type Metadata } from "grpc-web";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { Event } from "../../gen/talk/v1/events_pb.js";
import type { AgentId } from "../../src/domain/model/ids.js";
import {
  CreateTalkRequestSchema,
  GetTalkRequestSchema,
  GetTalkResponseSchema,
  WatchTalkRequestSchema,
  type GetTalkResponse,
} from "../../gen/talk/v1/talk_service_pb.js";
import { chromiumPath, launchChromium } from "../support/chromium.js";
import { frame, parseFrames, trailerFlag } from "../support/envelopes.js";
import { TalkServiceClient } from "../support/grpc-web-stub.js";
import {
  backends,
  Code,
  createTalk,
  expectCode,
  must,
  newCustomer,
  sendText,
  sleep,
  useService,
  type TestAgent,
  type TestEnv,
} from "../support/harness.js";
import { httpRequest } from "../support/rest-helpers.js";

/** xhr2's XMLHttpRequest, as far as the streaming subclass below reaches into it. */
interface Xhr2Request {
  responseText: string;
  readonly readyState: number;
  readonly _responseParts: Buffer[] | null;
  _onHttpResponseData(response: unknown, data: Buffer): void;
  _setReadyState(state: number): void;
}
const Xhr2 = createRequire(import.meta.url)("xhr2") as new () => Xhr2Request;
const loading = 3;

/**
 * xhr2 sets responseText only once the response has ended. A browser's XMLHttpRequest shows
 * the text received so far at every readystatechange while loading, and that is what the
 * grpc-web runtime reads a server stream from: this one does the same.
 */
class StreamingXhr extends Xhr2 {
  /** The last request made, to look at the text it received. */
  static latest: StreamingXhr | undefined;

  constructor() {
    super();
    StreamingXhr.latest = this;
  }

  override _onHttpResponseData(response: unknown, data: Buffer): void {
    super._onHttpResponseData(response, data);
    if (this._responseParts === null || this.readyState !== loading) return;
    this.responseText = Buffer.concat(this._responseParts).toString("latin1");
    this._setReadyState(loading);
  }
}

/** The WatchTalk and WatchEvents streams the agent has open on the service. */
const openStreams = (env: TestEnv, agent: TestAgent): number => env.service.watch.streams.open(agent.id as AgentId);

const bearer = (agent: TestAgent): Metadata => ({ authorization: `Bearer ${agent.token}` });

/** The error a call failed with, or undefined when it succeeded. */
async function failure(call: Promise<unknown>): Promise<unknown> {
  return call.then(
    () => undefined,
    (error: unknown) => error,
  );
}

const textOf = (event: Event): string | undefined => (event.payload.case === "messageCreated" ? event.payload.value.text : undefined);

/** Decodes base64 one 4-character group at a time, so that padding may end any group. */
function fromBase64Groups(text: string): Buffer {
  expect(text.length % 4, "whole base64 groups").toBe(0);
  return Buffer.concat((text.match(/.{4}/g) ?? []).map((group) => Buffer.from(group, "base64")));
}

describe.each(backends)("Google's grpc-web runtime in text mode on %s", (backend) => {
  const env = useService(backend);
  beforeAll(() => {
    Object.assign(globalThis, { XMLHttpRequest: StreamingXhr });
  });
  afterAll(() => {
    Reflect.deleteProperty(globalThis, "XMLHttpRequest");
  });

  it("unary: CreateTalk (unaryCall) and GetTalk (rpcCall) with a bearer token", async () => {
    const customer = newCustomer();
    const [ann, bob] = await Promise.all([env.agent(customer, "Ann"), env.agent(customer, "Bob")]);
    const client = new TalkServiceClient(env.url);
    const created = await client.createTalk(
      create(CreateTalkRequestSchema, { type: "group", name: "Over grpc-web-text", participantIds: [bob.id] }),
      bearer(ann),
    );
    const talk = must(created.talk, "talk");
    expect(talk.name).toBe("Over grpc-web-text");
    expect(talk.type).toBe("group");

    const got = await new Promise<GetTalkResponse>((resolve, reject) => {
      client.getTalk(create(GetTalkRequestSchema, { id: talk.id }), bearer(bob), (error, response) =>
        error === null ? resolve(response) : reject(error),
      );
    });
    expect(got.talk?.id).toBe(talk.id);
    expect(got.talk?.memberCount).toBe(2);
    // The same talk, seen over Connect.
    expect((await bob.talks.getTalk({ id: talk.id })).talk?.name).toBe("Over grpc-web-text");
  });

  it("errors: NOT_FOUND and INVALID_ARGUMENT with Connect's messages, UNAUTHENTICATED without a token", async () => {
    const ann = await env.agent(newCustomer(), "Ann");
    const client = new TalkServiceClient(env.url);
    const missing = randomUUID();
    const notFound = await failure(client.getTalk(create(GetTalkRequestSchema, { id: missing }), bearer(ann)));
    expect(notFound).toBeInstanceOf(RpcError);
    expect((notFound as RpcError).code).toBe(StatusCode.NOT_FOUND);
    expect((notFound as RpcError).message).toBe((await expectCode(ann.talks.getTalk({ id: missing }), Code.NotFound)).rawMessage);

    const invalid = await failure(client.getTalk(create(GetTalkRequestSchema, { id: "not-an-id" }), bearer(ann)));
    expect((invalid as RpcError).code).toBe(StatusCode.INVALID_ARGUMENT);
    expect((invalid as RpcError).message).toBe((await expectCode(ann.talks.getTalk({ id: "not-an-id" }), Code.InvalidArgument)).rawMessage);

    const anonymous = await failure(client.getTalk(create(GetTalkRequestSchema, { id: missing }), null));
    expect((anonymous as RpcError).code).toBe(StatusCode.UNAUTHENTICATED);
  });

  it("WatchTalk streams the messages sent while it is open; cancel ends the stream on the server", async () => {
    const customer = newCustomer();
    const [ann, bob] = await Promise.all([env.agent(customer, "Ann"), env.agent(customer, "Bob")]);
    const talk = await createTalk(ann, [bob]);
    const client = new TalkServiceClient(env.url);
    const stream = client.watchTalk(create(WatchTalkRequestSchema, { chatId: talk.id, afterSeq: talk.lastSeq }), bearer(bob));
    const xhr = must(StreamingXhr.latest, "the stream's request");
    const events: Event[] = [];
    const errors: unknown[] = [];
    let ended = false;
    stream.on("data", (response) => {
      if (response.kind.case === "event") events.push(response.kind.value);
    });
    stream.on("error", (error) => errors.push(error));
    stream.on("end", () => (ended = true));
    await expect.poll(() => openStreams(env, bob), { timeout: 10_000, interval: 50 }).toBe(1);

    // Texts of three lengths: their frames' lengths differ, so base64 padding falls mid-stream.
    const texts = ["a", "bb", "ccc"];
    for (const text of texts) {
      await sendText(ann, talk.id, text);
      await vi.waitFor(() => expect(events.map(textOf).at(-1)).toBe(text), { timeout: 10_000, interval: 20 });
    }
    expect(events.map((event) => event.type)).toEqual(["message_created", "message_created", "message_created"]);
    expect(events.map((event) => Number(event.seq))).toEqual([1, 2, 3].map((n) => Number(talk.lastSeq) + n));
    // The runtime read those frames from text with padding inside it, not only at its end.
    expect(xhr.responseText).toMatch(/=[A-Za-z0-9+/]/);

    stream.cancel();
    await expect.poll(() => openStreams(env, bob), { timeout: 10_000, interval: 50 }).toBe(0);
    await sendText(ann, talk.id, "after the cancel");
    await sleep(300);
    expect(events).toHaveLength(3);
    expect(errors).toEqual([]);
    expect(ended).toBe(false);
  });

  it("on the wire: a body in separately padded base64 pieces; base64 frames back, trailers included", async () => {
    const ann = await env.agent(newCustomer(), "Ann");
    const talk = await createTalk(ann, []);
    const message = frame(toBinary(GetTalkRequestSchema, create(GetTalkRequestSchema, { id: talk.id })));
    // The prefix alone (5 bytes: one "=") then the message, each encoded on its own.
    const body = message.subarray(0, 5).toString("base64") + message.subarray(5).toString("base64");
    expect(body.slice(0, 8)).toMatch(/=$/);
    const agent = new Agent();
    try {
      const path = "/talk.v1.TalkService/GetTalk";
      const headers = { authorization: `Bearer ${ann.token}`, "x-grpc-web": "1" };
      for (const contentType of ["application/grpc-web-text", "application/grpc-web-text+proto"]) {
        const reply = await httpRequest(agent, env.url, "POST", path, { ...headers, "content-type": contentType }, body);
        expect(reply.status).toBe(200);
        expect(reply.headers["content-type"]).toBe("application/grpc-web-text+proto");
        const { frames, rest } = parseFrames(fromBase64Groups(reply.text));
        expect(rest.length).toBe(0);
        expect(frames.map((f) => f.flags)).toEqual([0, trailerFlag]);
        expect(fromBinary(GetTalkResponseSchema, must(frames[0]).payload).talk?.id).toBe(talk.id);
        expect(must(frames[1]).payload.toString()).toMatch(/^grpc-status: ?0\r$/m);
      }

      // Not base64: the client's fault, as a trailer frame (the status of a call that sent no message).
      const garbled = await httpRequest(
        agent,
        env.url,
        "POST",
        path,
        { ...headers, "content-type": "application/grpc-web-text" },
        "not base64!",
      );
      expect(garbled.status).toBe(200);
      const trailer = must(parseFrames(fromBase64Groups(garbled.text)).frames[0]);
      expect(trailer.flags).toBe(trailerFlag);
      expect(trailer.payload.toString()).toMatch(/^grpc-status: ?3\r$/m);
    } finally {
      agent.destroy();
    }
  });
});

const haveChromium = existsSync(chromiumPath);
if (!haveChromium) {
  if (process.env["CI"] === "true") throw new Error(`Chromium not found at ${chromiumPath} (CI=true makes this fatal)`);
  console.warn(`!!! CHROMIUM NOT FOUND at ${chromiumPath}: the grpc-web page is SKIPPED (apt-get install -y chromium)`);
}

/** What the page puts on globalThis: the stub and the protobuf-es pieces to make requests with. */
interface PageGlobals {
  readonly talkhub: {
    readonly TalkServiceClient: typeof TalkServiceClient;
    readonly create: typeof create;
    readonly GetTalkRequestSchema: typeof GetTalkRequestSchema;
    readonly WatchTalkRequestSchema: typeof WatchTalkRequestSchema;
  };
  /** The texts of the messages the page's stream received, and its errors. */
  received: string[];
  streamErrors: string[];
  cancel?: () => void;
}

describe.skipIf(!haveChromium)("Google's grpc-web runtime in text mode in Chromium", () => {
  const env = useService("pglite");
  let server: Server | undefined;
  afterAll(async () => {
    await new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve())));
  });

  it("a page of another origin: GetTalk, NOT_FOUND and a WatchTalk stream, through CORS", async () => {
    const support = fileURLToPath(new URL("../support/", import.meta.url));
    const bundle = await build({
      stdin: {
        contents: [
          `import { create } from "@bufbuild/protobuf";`,
          `import { GetTalkRequestSchema, WatchTalkRequestSchema } from "../../gen/talk/v1/talk_service_pb.js";`,
          `import { TalkServiceClient } from "./grpc-web-stub.js";`,
          `globalThis.talkhub = { TalkServiceClient, create, GetTalkRequestSchema, WatchTalkRequestSchema };`,
        ].join("\n"),
        resolveDir: support,
        loader: "ts",
      },
      bundle: true,
      format: "esm",
      target: "es2022",
      write: false,
      logLevel: "warning",
    });
    const script = must(bundle.outputFiles[0], "the bundle").text;
    server = createServer((req, res) => {
      if (req.url === "/main.js") return void res.writeHead(200, { "content-type": "text/javascript" }).end(script);
      if (req.url === "/")
        return void res
          .writeHead(200, { "content-type": "text/html" })
          .end(`<!doctype html><script type="module" src="/main.js"></script>`);
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server?.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    const origin = `http://127.0.0.1:${typeof address === "object" && address !== null ? address.port : 0}`;

    const customer = newCustomer();
    const [ann, bob] = await Promise.all([env.agent(customer, "Ann"), env.agent(customer, "Bob")]);
    const talk = await createTalk(ann, [bob], "normal");
    await sendText(ann, talk.id, "before the page");

    const browser = await launchChromium();
    try {
      const page = await (await browser.newContext()).newPage();
      const pageErrors: string[] = [];
      page.on("pageerror", (error) => pageErrors.push(error.message));
      await page.goto(`${origin}/`);
      await page.waitForFunction(() => "talkhub" in globalThis);
      const call = { url: env.url, token: bob.token, talkId: talk.id, missing: randomUUID() };

      const unary = await page.evaluate(async ({ url, token, talkId, missing }) => {
        const { talkhub } = globalThis as unknown as PageGlobals;
        const client = new talkhub.TalkServiceClient(url);
        const metadata = { authorization: `Bearer ${token}` };
        const got = await client.getTalk(talkhub.create(talkhub.GetTalkRequestSchema, { id: talkId }), metadata);
        const error = await client.getTalk(talkhub.create(talkhub.GetTalkRequestSchema, { id: missing }), metadata).then(
          () => undefined,
          (e: { code: number; message: string }) => ({ code: e.code, message: e.message }),
        );
        return { id: got.talk?.id, type: got.talk?.type, error };
      }, call);
      expect(unary.id).toBe(talk.id);
      expect(unary.type).toBe("normal");
      expect(unary.error?.code).toBe(StatusCode.NOT_FOUND);
      expect(unary.error?.message).toBe((await expectCode(bob.talks.getTalk({ id: call.missing }), Code.NotFound)).rawMessage);

      await page.evaluate(({ url, token, talkId }) => {
        const globals = globalThis as unknown as PageGlobals;
        globals.received = [];
        globals.streamErrors = [];
        const client = new globals.talkhub.TalkServiceClient(url);
        const stream = client.watchTalk(globals.talkhub.create(globals.talkhub.WatchTalkRequestSchema, { chatId: talkId }), {
          authorization: `Bearer ${token}`,
        });
        stream.on("data", (response) => {
          if (response.kind.case === "event" && response.kind.value.payload.case === "messageCreated")
            globals.received.push(response.kind.value.payload.value.text);
        });
        stream.on("error", (error) => globals.streamErrors.push(`${error.code} ${error.message}`));
        globals.cancel = () => stream.cancel();
      }, call);
      // The replay from the start, then what is sent while the page watches.
      await page.waitForFunction(() => (globalThis as unknown as PageGlobals).received.includes("before the page"), undefined, {
        timeout: 10_000,
      });
      for (const text of ["while the page watches", "and another"]) await sendText(ann, talk.id, text);
      await page.waitForFunction(() => (globalThis as unknown as PageGlobals).received.includes("and another"), undefined, {
        timeout: 10_000,
      });
      // The joins' system messages come first in the replay.
      expect((await page.evaluate(() => (globalThis as unknown as PageGlobals).received)).slice(-3)).toEqual([
        "before the page",
        "while the page watches",
        "and another",
      ]);
      expect(openStreams(env, bob)).toBe(1);

      await page.evaluate(() => (globalThis as unknown as PageGlobals).cancel?.());
      await expect.poll(() => openStreams(env, bob), { timeout: 10_000, interval: 50 }).toBe(0);
      expect(await page.evaluate(() => (globalThis as unknown as PageGlobals).streamErrors)).toEqual([]);
      expect(pageErrors).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 120_000);
});
