import { create, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type Transport } from "@connectrpc/connect";
import { EventEmitter } from "node:events";
import { describe, expect, it, vi } from "vitest";
import { createRestHandler, type RestRequest, type RestResponse } from "../../src/http/rest/transcoder.js";
import { testService } from "./rest-schema.js";

/** Waits for a condition, looking often: these fakes settle within a few microtasks. */
const until = (check: () => void) => vi.waitFor(check, { interval: 1, timeout: 2_000 });

const service = testService([
  { name: "Get", rule: { pattern: { case: "get", value: "/v1/things/{id}" }, responseBody: "inner" } },
  { name: "Whole", rule: { pattern: { case: "get", value: "/v1/whole/{id}" } } },
  { name: "Post", rule: { pattern: { case: "post", value: "/v1/things" }, body: "*" } },
  { name: "Watch", streaming: true, rule: { pattern: { case: "get", value: "/v1/things/{id}/watch" } } },
  { name: "Upload", clientStreaming: true, rule: { pattern: { case: "post", value: "/v1/uploads" }, body: "*" } },
]);
const output = service.methods[0]!.output;
type Res = MessageShape<typeof output>;
const res = (init: { id?: string; inner?: { name?: string } }): Res => create(output as DescMessage, init) as Res;

interface Call {
  method: string;
  input: Record<string, unknown>;
  headers: Headers;
  signal: AbortSignal | undefined;
}

/** A transport that records calls and answers with what the test gives. */
function fakeTransport(answer: { unary?: () => Promise<Res>; stream?: (signal: AbortSignal | undefined) => AsyncIterable<Res> }) {
  const calls: Call[] = [];
  const transport: Transport = {
    unary: (async (
      method: { name: string },
      signal: AbortSignal | undefined,
      _t: unknown,
      header: ConstructorParameters<typeof Headers>[0],
      input: object,
    ) => {
      calls.push({ method: method.name, input: { ...input }, headers: new Headers(header), signal });
      const message = await (answer.unary ?? (async () => res({})))();
      return { stream: false, message, header: new Headers(), trailer: new Headers() };
    }) as unknown as Transport["unary"],
    stream: (async (
      method: { name: string },
      signal: AbortSignal | undefined,
      _t: unknown,
      header: ConstructorParameters<typeof Headers>[0],
      input: AsyncIterable<object>,
    ) => {
      for await (const one of input) calls.push({ method: method.name, input: { ...one }, headers: new Headers(header), signal });
      return { stream: true, message: (answer.stream ?? async function* () {})(signal), header: new Headers(), trailer: new Headers() };
    }) as unknown as Transport["stream"],
  };
  return { transport, calls };
}

class FakeResponse extends EventEmitter implements RestResponse {
  status = 0;
  headers: Record<string, string> = {};
  body = "";
  ended = false;
  /** What write returns: false simulates a full socket buffer. */
  writable = true;
  get headersSent(): boolean {
    return this.status !== 0;
  }
  writeHead(status: number, headers: Record<string, string>): this {
    if (this.headersSent) throw new Error("headers written twice");
    this.status = status;
    this.headers = headers;
    return this;
  }
  write(chunk: string): boolean {
    this.body += chunk;
    return this.writable;
  }
  end(chunk: string): this {
    this.body += chunk;
    this.ended = true;
    return this;
  }
  json(): unknown {
    return JSON.parse(this.body);
  }
  lines(): unknown[] {
    return this.body
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => JSON.parse(l) as unknown);
  }
}

function request(
  method: string,
  url: string,
  init: { body?: (string | Buffer)[]; headers?: Record<string, string | string[]>; httpVersionMajor?: number } = {},
): RestRequest {
  const chunks = init.body ?? [];
  return {
    method,
    url,
    httpVersionMajor: init.httpVersionMajor ?? 1,
    headers: { ...init.headers },
    async *[Symbol.asyncIterator]() {
      yield* chunks;
    },
  };
}

function setup(answer: Parameters<typeof fakeTransport>[0] = {}, maxBodyBytes = 1000) {
  const { transport, calls } = fakeTransport(answer);
  const handle = createRestHandler({ services: [service], transport, maxBodyBytes });
  const send = async (req: RestRequest) => {
    const response = new FakeResponse();
    const handled = handle(req, response);
    if (handled) await until(() => expect(response.ended).toBe(true));
    return { handled, response };
  };
  return { handle, send, calls };
}

describe("REST handler: routing", () => {
  it("hands on requests outside the REST prefixes", async () => {
    const { send, calls } = setup();
    for (const url of ["/test.v1.Svc/Get", "/v2/things/x", "/", "/v1x/things/a"])
      expect((await send(request("GET", url))).handled).toBe(false);
    expect((await send({ ...request("GET", "/"), url: undefined })).handled).toBe(false);
    expect(calls).toEqual([]);
  });

  it("hands on a request whose normalised path leaves the prefix", async () => {
    const { send } = setup();
    expect((await send(request("GET", "/v1/../other/x"))).handled).toBe(false);
  });

  it("answers 404 in JSON for an unknown path under the prefix", async () => {
    const { send, calls } = setup();
    for (const url of ["/v1/nothing", "/v1?x=1", "/v1/things/a/b/c"]) {
      const { handled, response } = await send(request("GET", url));
      expect(handled).toBe(true);
      expect(response.status).toBe(404);
      expect(response.headers["content-type"]).toBe("application/json");
      expect(response.json()).toEqual({ code: "not_found", message: `no such path: ${new URL(url, "http://h").pathname}` });
    }
    expect(calls).toEqual([]);
  });

  it("answers 405 for a known path with another method", async () => {
    const { send } = setup();
    const { response } = await send(request("DELETE", "/v1/things/a"));
    expect(response.status).toBe(405);
    expect(response.json()).toEqual({ code: "unimplemented", message: "DELETE is not allowed on /v1/things/a" });
    const { response: noMethod } = await send({ ...request("GET", "/v1/things/a"), method: undefined });
    expect(noMethod.json()).toEqual({ code: "unimplemented", message: " is not allowed on /v1/things/a" });
  });

  it("picks the binding by method and path, with path fields and query", async () => {
    const { send, calls } = setup();
    const { response } = await send(request("GET", "/v1/things/a%2Fb?count=7&chat_id=c"));
    expect(response.status).toBe(200);
    expect(calls).toEqual([
      {
        method: "Get",
        input: expect.objectContaining({ id: "a/b", count: 7, chatId: "c" }),
        headers: expect.any(Headers),
        signal: expect.any(AbortSignal),
      },
    ]);
  });
});

describe("REST handler: unary calls", () => {
  it("answers the response field the rule names, in proto names with defaults", async () => {
    const { send } = setup({ unary: async () => res({ id: "x", inner: { name: "n" } }) });
    const { response } = await send(request("GET", "/v1/things/a"));
    expect(response.status).toBe(200);
    expect(response.headers["content-type"]).toBe("application/json");
    expect(response.json()).toEqual({ name: "n", items: [] });
  });

  it("answers null when the named response field is unset", async () => {
    const { send } = setup({ unary: async () => res({ id: "x" }) });
    expect((await send(request("GET", "/v1/things/a"))).response.body).toBe("null");
  });

  it("answers the whole response without a response body rule", async () => {
    const { send } = setup({ unary: async () => res({ id: "x" }) });
    expect((await send(request("GET", "/v1/whole/a"))).response.json()).toEqual({ id: "x" });
    const empty = setup({ unary: async () => res({}) });
    expect((await empty.send(request("GET", "/v1/whole/a"))).response.json()).toEqual({ id: "" });
  });

  it("reads the whole body, in string or buffer chunks, into the request", async () => {
    const { send, calls } = setup();
    await send(request("POST", "/v1/things", { body: ['{"id":', Buffer.from('"b","tags":["t"]}')] }));
    expect(calls[0]?.input).toEqual(expect.objectContaining({ id: "b", tags: ["t"] }));
  });

  it("takes a body of exactly the limit and refuses a larger one with 429, closing HTTP/1.1", async () => {
    const body = `{"id":"${"x".repeat(20)}"}`;
    const exact = setup({}, body.length);
    expect((await exact.send(request("POST", "/v1/things", { body: [body] }))).response.status).toBe(200);
    const over = setup({}, body.length - 1);
    const { response } = await over.send(request("POST", "/v1/things", { body: [body.slice(0, 10), body.slice(10)] }));
    expect(response.status).toBe(429);
    expect(response.json()).toEqual({ code: "resource_exhausted", message: `request body larger than ${body.length - 1} bytes` });
    expect(response.headers["connection"]).toBe("close");
    expect(over.calls).toEqual([]);
    const h2 = await over.send(request("POST", "/v1/things", { body: [body], httpVersionMajor: 2 }));
    expect(h2.response.status).toBe(429);
    expect(h2.response.headers["connection"]).toBeUndefined();
  });

  it("answers 400 for a body that is not JSON, or does not fit the message", async () => {
    const { send, calls } = setup();
    const notJson = (await send(request("POST", "/v1/things", { body: ["{"] }))).response;
    expect(notJson.status).toBe(400);
    expect(notJson.json()).toEqual({ code: "invalid_argument", message: "the request body is not JSON" });
    expect(notJson.headers["connection"]).toBeUndefined();
    const badField = (await send(request("POST", "/v1/things", { body: ['{"count":"many"}'] }))).response;
    expect(badField.status).toBe(400);
    expect(badField.json()).toEqual({
      code: "invalid_argument",
      message: expect.stringMatching(/^invalid request: cannot decode field test\.v1\.Req\.count/),
    });
    expect(calls).toEqual([]);
  });

  it("refuses body fields the message does not have, naming them, and calls nothing", async () => {
    const { send, calls } = setup();
    const { response } = await send(request("POST", "/v1/things", { body: ['{"id":"a","unknown":1}'] }));
    expect(response.status).toBe(400);
    expect(response.body).toContain('\\"unknown\\"');
    expect(calls).toHaveLength(0);
  });

  it("forwards the call's headers, not the exchange's", async () => {
    const { send, calls } = setup();
    await send(
      request("GET", "/v1/things/a", {
        headers: {
          authorization: "Bearer t",
          "x-multi": ["a", "b"],
          "content-type": "application/json",
          "content-length": "0",
          connection: "keep-alive",
          host: "h",
          "transfer-encoding": "chunked",
          "accept-encoding": "gzip",
          "keep-alive": "5",
          ":authority": "h",
        },
      }),
    );
    const headers = Object.fromEntries(calls[0]!.headers);
    expect(headers).toEqual({ authorization: "Bearer t", "x-multi": "a, b", "x-request-id": expect.any(String) });
  });

  it("gives every call a request id, echoed in the answer and errors", async () => {
    const { send, calls } = setup({ unary: async () => Promise.reject(new ConnectError("nope", Code.PermissionDenied)) });
    const { response } = await send(request("GET", "/v1/things/a"));
    const id = calls[0]!.headers.get("x-request-id");
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(response.headers["x-request-id"]).toBe(id);
    expect(response.status).toBe(403);
    expect(response.json()).toEqual({ code: "permission_denied", message: "nope" });
    expect(Object.keys(response.headers).sort()).toEqual(["content-type", "x-request-id"]);
  });

  it("keeps a client's request id, cut to 128 characters", async () => {
    const ok = setup();
    const given = "r".repeat(200);
    const { response } = await ok.send(request("GET", "/v1/things/a", { headers: { "x-request-id": given } }));
    expect(ok.calls[0]!.headers.get("x-request-id")).toBe("r".repeat(128));
    expect(response.headers["x-request-id"]).toBe("r".repeat(128));
    expect(response.headers["content-type"]).toBe("application/json");
  });

  it("passes retry-after on from an error", async () => {
    const error = new ConnectError("slow down", Code.ResourceExhausted, { "retry-after": "3" });
    const { send } = setup({ unary: async () => Promise.reject(error) });
    const { response } = await send(request("GET", "/v1/things/a", { httpVersionMajor: 2 }));
    expect(response.status).toBe(429);
    expect(response.headers["retry-after"]).toBe("3");
  });

  it("turns a thrown non-Connect error into an unknown error", async () => {
    const { send } = setup({ unary: async () => Promise.reject(new Error("boom")) });
    const { response } = await send(request("GET", "/v1/things/a"));
    expect(response.status).toBe(500);
    expect(response.json()).toEqual({ code: "unknown", message: "boom" });
  });

  it("aborts the call's signal when the response closes", async () => {
    const { handle, calls } = setup({ unary: () => new Promise<Res>(() => undefined) });
    const response = new FakeResponse();
    handle(request("GET", "/v1/things/a"), response);
    await until(() => expect(calls).toHaveLength(1));
    expect(calls[0]!.signal?.aborted).toBe(false);
    response.emit("close");
    expect(calls[0]!.signal?.aborted).toBe(true);
  });

  it("refuses a method that is neither unary nor server-streaming", async () => {
    const { send } = setup();
    const { response } = await send(request("POST", "/v1/uploads", { body: ["{}"] }));
    expect(response.status).toBe(501);
    expect(response.json()).toEqual({ code: "unimplemented", message: "Upload has no REST form" });
  });
});

describe("REST handler: server streaming", () => {
  it("answers newline-delimited JSON, one message a line", async () => {
    const { send, calls } = setup({
      stream: async function* () {
        yield res({ id: "1" });
        yield res({ id: "2", inner: { name: "n" } });
      },
    });
    const { response } = await send(request("GET", "/v1/things/a/watch?tags=x"));
    expect(calls[0]).toEqual(expect.objectContaining({ method: "Watch", input: expect.objectContaining({ id: "a", tags: ["x"] }) }));
    expect(response.status).toBe(200);
    expect(response.headers).toEqual({
      "content-type": "application/x-ndjson",
      "cache-control": "no-store",
      "x-request-id": calls[0]!.headers.get("x-request-id"),
    });
    expect(response.body.endsWith("\n")).toBe(true);
    expect(response.lines()).toEqual([{ id: "1" }, { id: "2", inner: { name: "n", items: [] } }]);
  });

  it("answers 200 and an empty body for a stream without messages", async () => {
    const { send } = setup();
    const { response } = await send(request("GET", "/v1/things/a/watch"));
    expect(response.status).toBe(200);
    expect(response.headers["content-type"]).toBe("application/x-ndjson");
    expect(response.body).toBe("");
  });

  it("answers an error before the first message with its status", async () => {
    const { send } = setup({
      stream: async function* () {
        yield* [];
        throw new ConnectError("gone", Code.NotFound);
      },
    });
    const { response } = await send(request("GET", "/v1/things/a/watch"));
    expect(response.status).toBe(404);
    expect(response.json()).toEqual({ code: "not_found", message: "gone" });
  });

  it("ends with an error line after messages were sent", async () => {
    const { send } = setup({
      stream: async function* () {
        yield res({ id: "1" });
        throw new ConnectError("too slow", Code.ResourceExhausted);
      },
    });
    const { response } = await send(request("GET", "/v1/things/a/watch"));
    expect(response.status).toBe(200);
    expect(response.lines()).toEqual([{ id: "1" }, { error: { code: "resource_exhausted", message: "too slow" } }]);
  });

  it("pulls no more while the socket is full, and goes on after drain", async () => {
    let pulled = 0;
    const { handle } = setup({
      stream: async function* () {
        for (let i = 1; i <= 3; i++) {
          pulled = i;
          yield res({ id: String(i) });
        }
      },
    });
    const response = new FakeResponse();
    response.writable = false;
    handle(request("GET", "/v1/things/a/watch"), response);
    await until(() => expect(response.listenerCount("drain")).toBe(1));
    expect(pulled).toBe(1);
    expect(response.lines()).toHaveLength(1);
    response.writable = true;
    response.emit("drain");
    await until(() => expect(response.ended).toBe(true));
    expect(pulled).toBe(3);
    expect(response.lines()).toHaveLength(3);
    expect(response.listenerCount("drain")).toBe(0);
  });

  it("stops at once, writing nothing more, when the response closes while full", async () => {
    let pulled = 0;
    const { handle, calls } = setup({
      stream: async function* () {
        for (let i = 1; i <= 3; i++) {
          pulled = i;
          yield res({ id: String(i) });
        }
      },
    });
    const response = new FakeResponse();
    response.writable = false;
    handle(request("GET", "/v1/things/a/watch"), response);
    await until(() => expect(response.listenerCount("drain")).toBe(1));
    response.emit("close");
    await until(() => expect(response.listenerCount("drain")).toBe(0));
    expect(calls[0]!.signal?.aborted).toBe(true);
    await new Promise((resolve) => setImmediate(resolve));
    // The loop looks at the signal after its next pull: that message is dropped, not written.
    expect(pulled).toBeLessThanOrEqual(2);
    expect(response.ended).toBe(false);
    expect(response.lines()).toHaveLength(1);
    expect(response.listenerCount("close")).toBe(0);
  });

  it("writes nothing when the call is aborted after the last message", async () => {
    const { handle } = setup({
      stream: async function* () {
        yield res({ id: "1" });
      },
    });
    const response = new FakeResponse();
    response.writable = false;
    handle(request("GET", "/v1/things/a/watch"), response);
    await until(() => expect(response.listenerCount("drain")).toBe(1));
    response.emit("close");
    await new Promise((resolve) => setImmediate(resolve));
    expect(response.ended).toBe(false);
  });

  it("stops reading a stream when the call was aborted before a message arrives", async () => {
    let release: (() => void) | undefined;
    const { handle } = setup({
      stream: async function* () {
        await new Promise<void>((resolve) => (release = resolve));
        yield res({ id: "1" });
        yield res({ id: "2" });
      },
    });
    const response = new FakeResponse();
    handle(request("GET", "/v1/things/a/watch"), response);
    await until(() => expect(release).toBeDefined());
    response.emit("close");
    release?.();
    await new Promise((resolve) => setImmediate(resolve));
    expect(response.status).toBe(0);
    expect(response.body).toBe("");
  });
});
