/**
 * The REST transcoder: errors as {"code","message"} with the HTTP status of their gRPC code,
 * request parsing (bodies, query parameters, path fields), the request size limit, NDJSON
 * streams, both token forms, REST over h2c, and the path templates themselves.
 */
import { Agent as HttpAgent } from "node:http";
import http2 from "node:http2";
import { randomBytes, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parsePathTemplate, matchPathTemplate } from "../../src/http/rest/path-template.js";
import { backends, newCustomer, useService } from "../support/harness.js";
import type { TestAgent } from "../support/harness.js";
import { spawnTalkhub, type TalkhubProcess } from "../support/processes.js";
import { call, expectRestError, expectStatus, httpRequest, readLines, rest } from "../support/rest-helpers.js";
import type { Json } from "../support/rest-helpers.js";

describe.each(backends)("REST transcoding on %s", (backend) => {
  const env = useService(backend);
  const url = (): string => env.service.url;

  async function pair(): Promise<[TestAgent, TestAgent]> {
    const customer = newCustomer();
    return [await env.agent(customer, "Ann"), await env.agent(customer, "Bob")];
  }

  async function groupTalk(owner: TestAgent, others: TestAgent[]): Promise<Json> {
    return expectStatus(
      await call(url(), "POST", "/v1.0/talks", owner.token, { type: "group", participant_ids: others.map((a) => a.id) }),
      200,
    );
  }

  describe("errors", () => {
    it("400 invalid_argument names the field", async () => {
      const [a] = await pair();
      expectRestError(await call(url(), "POST", "/v1.0/talks", a.token, { type: "channel" }), 400, "invalid_argument", "type");
      expectRestError(await call(url(), "GET", "/v1.0/talks/not-a-uuid", a.token), 400, "invalid_argument", "id");
    });

    it("400 failed_precondition for a message to a closed talk", async () => {
      const [a, b] = await pair();
      const talk = await groupTalk(a, [b]);
      const closed = expectStatus(await call(url(), "POST", `/v1.0/talks/${talk.id}/close`, a.token, {}), 200);
      expect(closed.status).toBe("closed");
      expectRestError(await call(url(), "POST", `/v1.0/talks/${talk.id}/messages`, a.token, { text: "hi" }), 400, "failed_precondition");
    });

    it("401 unauthenticated without a token and with a bad one", async () => {
      expectRestError(await rest(url(), "GET", "/v1.0/talks"), 401, "unauthenticated");
      expectRestError(await rest(url(), "GET", "/v1.0/talks?token=not.a.jwt"), 401, "unauthenticated");
      expectRestError(await rest(url(), "GET", "/v1.0/talks", { bearer: "garbage" }), 401, "unauthenticated");
    });

    it("403 permission_denied for a directory change without the admin role", async () => {
      const [a] = await pair();
      expectRestError(await call(url(), "POST", "/v1.0/agents", a.token, { name: "X" }), 403, "permission_denied");
    });

    it("404 not_found for a talk that does not exist or that the caller is not in", async () => {
      const [a, b] = await pair();
      expectRestError(await call(url(), "GET", `/v1.0/talks/${randomUUID()}`, a.token), 404, "not_found");
      const talk = await groupTalk(a, []);
      expectRestError(await call(url(), "GET", `/v1.0/talks/${talk.id}`, b.token), 404, "not_found");
      expectRestError(await call(url(), "GET", `/v1.0/messages/${randomUUID()}`, a.token), 404, "not_found");
    });

    it("409 already_exists for an agent added twice", async () => {
      const [a, b] = await pair();
      const talk = await groupTalk(a, [b]);
      expectRestError(await call(url(), "POST", `/v1.0/talks/${talk.id}/participants`, a.token, { agent_id: b.id }), 409, "already_exists");
    });

    it("400 for a body that is not JSON, a JSON array, or a field of the wrong type", async () => {
      const [a] = await pair();
      expectRestError(await call(url(), "POST", "/v1.0/talks", a.token, '{"name": "x",'), 400, "invalid_argument");
      expectRestError(await call(url(), "POST", "/v1.0/talks", a.token, "not json at all"), 400, "invalid_argument");
      expectRestError(await call(url(), "POST", "/v1.0/talks", a.token, '["a", "b"]'), 400, "invalid_argument");
      expectRestError(await call(url(), "POST", "/v1.0/talks", a.token, "42"), 400, "invalid_argument");
      expectRestError(await call(url(), "POST", "/v1.0/talks", a.token, { name: { nested: true } }), 400, "invalid_argument");
      // Nothing was created by the failed calls.
      expect(expectStatus(await call(url(), "GET", "/v1.0/talks", a.token), 200).result).toEqual([]);
    });

    it("404 for an unknown REST path or a method the path does not have", async () => {
      const [a] = await pair();
      expect((await call(url(), "GET", "/v1.0/nothing/here", a.token)).status).toBe(404);
      expect((await call(url(), "GET", "/v1.0/talks/x/y/z", a.token)).status).toBe(404);
      expect((await call(url(), "POST", "/v2/talks", a.token, {})).status).toBe(404);
      expect([404, 405]).toContain((await call(url(), "DELETE", "/v1.0/talks", a.token)).status);
      const wrongMethod = await call(url(), "PUT", "/v1.0/talks", a.token, {});
      expect([404, 405]).toContain(wrongMethod.status);
    });
  });

  describe("request parsing", () => {
    it("takes page_size from the query as a string number and pages with page_token", async () => {
      const [a, b] = await pair();
      for (let i = 0; i < 3; i++) await groupTalk(a, [b]);
      const first = expectStatus(await call(url(), "GET", "/v1.0/service_agents/talk_chats?page_size=2", a.token), 200);
      expect(first.result).toHaveLength(2);
      expect(first.next_page_token).not.toBe("");
      const second = expectStatus(
        await call(
          url(),
          "GET",
          `/v1.0/service_agents/talk_chats?page_size=2&page_token=${encodeURIComponent(first.next_page_token)}`,
          a.token,
        ),
        200,
      );
      expect(second.result).toHaveLength(1);
      expect(second.next_page_token).toBe("");
      const ids = [...first.result, ...second.result].map((t: Json) => t.id);
      expect(new Set(ids).size).toBe(3);
      expectRestError(await call(url(), "GET", "/v1.0/talks?page_size=many", a.token), 400, "invalid_argument");
    });

    it("lets the path field win over the same field in the body", async () => {
      const [a, b] = await pair();
      const talk = await groupTalk(a, [b]);
      const other = await groupTalk(a, [b]);
      const sent = expectStatus(
        await call(url(), "POST", `/v1.0/talks/${talk.id}/messages`, a.token, { chat_id: other.id, text: "where?" }),
        200,
      );
      expect(sent.chat_id).toBe(talk.id);
    });

    it("refuses unknown body fields by name and accepts camelCase JSON names", async () => {
      const [a, b] = await pair();
      expectRestError(
        await call(url(), "POST", "/v1.0/talks", a.token, { name: "N", participantIds: [b.id], extra: 1 }),
        400,
        "invalid_argument",
        "extra",
      );
      const talk = expectStatus(await call(url(), "POST", "/v1.0/talks", a.token, { name: "N", participantIds: [b.id] }), 200);
      expect(talk).toMatchObject({ name: "N", member_count: 2 });
    });

    it("takes the token from the Authorization header as well as from ?token=", async () => {
      const [a, b] = await pair();
      const talk = await groupTalk(a, [b]);
      const byHeader = expectStatus(await rest(url(), "GET", `/v1.0/talks/${talk.id}`, { bearer: b.token }), 200);
      const byQuery = expectStatus(await rest(url(), "GET", `/v1.0/talks/${talk.id}?token=${b.token}`), 200);
      expect(byHeader.id).toBe(talk.id);
      expect(byQuery).toEqual(byHeader);
      // The header wins over the query: a valid header with a bad query token still works.
      expectStatus(await rest(url(), "GET", `/v1.0/talks/${talk.id}?token=garbage`, { bearer: b.token }), 200);
    });
  });

  describe("server streaming as NDJSON", () => {
    it("streams the recorded events in seq order, then live ones, one JSON object per line", async () => {
      const [a, b] = await pair();
      const talk = await groupTalk(a, [b]);
      await call(url(), "POST", `/v1.0/talks/${talk.id}/messages`, a.token, { text: "one" });
      await call(url(), "POST", `/v1.0/talks/${talk.id}/messages`, b.token, { text: "two" });
      const head = expectStatus(await call(url(), "GET", `/v1.0/talks/${talk.id}`, a.token), 200);
      const lastSeq = Number(head.last_seq);
      expect(lastSeq).toBeGreaterThanOrEqual(4);

      const abort = new AbortController();
      try {
        const response = await fetch(`${url()}/v1.0/talks/${talk.id}/events?after_seq=0&token=${a.token}`, { signal: abort.signal });
        expect(response.status).toBe(200);
        expect(response.headers.get("content-type")).toContain("application/x-ndjson");
        const body = response.body;
        if (body === null) throw new Error("no body");
        const isEvent = (line: Json) => line.event !== undefined;
        const recorded = await readLines(body, (lines) => lines.filter(isEvent).length >= lastSeq);
        const events = recorded.filter(isEvent).map((line: Json) => line.event);
        for (const line of recorded) expect(Object.keys(line).some((k) => k === "event" || k === "heartbeat")).toBe(true);
        expect(events.map((e: Json) => Number(e.seq))).toEqual(Array.from({ length: lastSeq }, (_, i) => i + 1));
        for (const event of events) {
          expect(event.chat_id).toBe(talk.id);
          expect(typeof event.type).toBe("string");
          // The payload case carries the type's name.
          expect(event[event.type]).toBeTypeOf("object");
          expect(event[event.type]).not.toBeNull();
        }
        const texts = events
          .filter((e: Json) => e.type === "message_created" && e.message_created.type === "normal")
          .map((e: Json) => e.message_created.text);
        expect(texts).toEqual(["one", "two"]);

        // A live event follows on the same stream.
        expectStatus(await call(url(), "POST", `/v1.0/talks/${talk.id}/messages`, b.token, { text: "three" }), 200);
        const live = await readLines(body, (lines) => lines.some((line) => line.event?.message_created?.text === "three"));
        const liveEvent = live.find((line) => line.event?.message_created?.text === "three")?.event;
        expect(Number(liveEvent.seq)).toBeGreaterThan(lastSeq);
      } finally {
        abort.abort();
      }
    });

    it("resumes after a given seq and answers an error status for a talk the caller is not in", async () => {
      const [a, b] = await pair();
      const talk = await groupTalk(a, [b]);
      const head = expectStatus(await call(url(), "GET", `/v1.0/talks/${talk.id}`, a.token), 200);
      const lastSeq = Number(head.last_seq);
      const abort = new AbortController();
      try {
        const response = await fetch(`${url()}/v1.0/service_agents/talk_chats/${talk.id}/events?after_seq=${lastSeq - 1}`, {
          headers: { Authorization: `Bearer ${b.token}` },
          signal: abort.signal,
        });
        expect(response.status).toBe(200);
        const lines = await readLines(response.body as ReadableStream<Uint8Array>, (got) => got.some((line) => line.event !== undefined));
        expect(Number(lines.find((line) => line.event !== undefined)?.event.seq)).toBe(lastSeq);
      } finally {
        abort.abort();
      }
      const stranger = await env.agent(newCustomer(), "Eve");
      expectRestError(await call(url(), "GET", `/v1.0/talks/${talk.id}/events?after_seq=0`, stranger.token), 404, "not_found");
      expectRestError(await call(url(), "GET", `/v1.0/talks/${talk.id}/events?after_seq=${lastSeq + 100}`, a.token), 400, "out_of_range");
    });
  });

  describe("REST over HTTP/2 (h2c, prior knowledge)", () => {
    function h2Request(path: string, method: string, token: string, body?: unknown): Promise<{ status: number; json: Json }> {
      return new Promise((resolve, reject) => {
        const session = http2.connect(url());
        session.on("error", reject);
        const timer = setTimeout(() => {
          session.destroy();
          reject(new Error("h2 request timed out"));
        }, 10_000);
        const headers: http2.OutgoingHttpHeaders = { ":method": method, ":path": path, authorization: `Bearer ${token}` };
        if (body !== undefined) headers["content-type"] = "application/json";
        const stream = session.request(headers);
        let status = 0;
        let text = "";
        stream.setEncoding("utf8");
        stream.on("response", (h) => {
          status = Number(h[":status"]);
        });
        stream.on("data", (chunk: string) => {
          text += chunk;
        });
        stream.on("end", () => {
          clearTimeout(timer);
          session.close();
          try {
            resolve({ status, json: text === "" ? undefined : JSON.parse(text) });
          } catch (error) {
            reject(error);
          }
        });
        stream.on("error", reject);
        stream.end(body === undefined ? undefined : JSON.stringify(body));
      });
    }

    it("creates a talk, sends a message and reads it back over h2c", async () => {
      const [a, b] = await pair();
      const created = await h2Request("/v1.0/talks", "POST", a.token, { name: "h2", participant_ids: [b.id] });
      expect(created.status, JSON.stringify(created.json)).toBe(200);
      expect(created.json).toMatchObject({ name: "h2", member_count: 2 });
      const sent = await h2Request(`/v1.0/talks/${created.json.id}/messages`, "POST", b.token, { text: "over h2" });
      expect(sent.status).toBe(200);
      const got = await h2Request(`/v1.0/messages/${sent.json.id}`, "GET", a.token);
      expect(got).toMatchObject({ status: 200, json: { id: sent.json.id, text: "over h2" } });
      const missing = await h2Request(`/v1.0/talks/${randomUUID()}`, "GET", a.token);
      expect(missing).toMatchObject({ status: 404, json: { code: "not_found" } });
    });
  });
});

describe.each(backends)("REST request size limit on %s", (backend) => {
  const custom = useService(backend, { http: { maxRequestBytes: 64 * 1024 } });

  it("answers resource_exhausted for a body over maxRequestBytes", async () => {
    const a = await custom.agent(newCustomer(), "Ann");
    const base = custom.service.url;
    const talk = expectStatus(await call(base, "POST", "/v1.0/talks", a.token, { name: "limits" }), 200);

    const reply = await call(base, "POST", `/v1.0/talks/${talk.id}/messages`, a.token, JSON.stringify({ text: "x".repeat(100 * 1024) }));
    expect([413, 429]).toContain(reply.status);
    expect(reply.json).toMatchObject({ code: "resource_exhausted" });
    // Under the limit is read as usual; nothing of the oversized request was applied.
    expect(expectStatus(await call(base, "POST", `/v1.0/talks/${talk.id}/messages`, a.token, { text: "fits" }), 200).text).toBe("fits");
    const list = expectStatus(await call(base, "GET", `/v1.0/talks/${talk.id}/messages`, a.token), 200);
    expect(list.result.filter((m: Json) => m.type === "normal").map((m: Json) => m.text)).toEqual(["fits"]);
  });

  it("keeps serving on the same keep-alive connection after refusing an oversized body", async () => {
    const a = await custom.agent(newCustomer(), "Ann");
    const base = custom.service.url;
    const talk = expectStatus(await call(base, "POST", "/v1.0/talks", a.token, { name: "limits" }), 200);
    // One socket at most: every request below goes over the same connection while it stays open.
    const agent = new HttpAgent({ keepAlive: true, maxSockets: 1 });
    try {
      const auth = { authorization: `Bearer ${a.token}`, "content-type": "application/json" };
      const big = await httpRequest(agent, base, "PUT", `/v1.0/talks/${talk.id}`, auth, JSON.stringify({ name: "n".repeat(200 * 1024) }));
      expect([413, 429]).toContain(big.status);
      expect(JSON.parse(big.text)).toMatchObject({ code: "resource_exhausted" });
      for (let i = 0; i < 3; i++) {
        const health = await httpRequest(agent, base, "GET", "/healthz");
        expect(health.status).toBe(200);
        const got = await httpRequest(agent, base, "GET", `/v1.0/talks/${talk.id}`, auth);
        expect(got.status).toBe(200);
        expect(JSON.parse(got.text).name).toBe("limits");
      }
    } finally {
      agent.destroy();
    }
  });
});

describe("malformed request URLs", () => {
  // A process of its own: a crash must not take the test runner down.
  let proc: TalkhubProcess | undefined;
  beforeAll(async () => {
    // tsx compiles the service and the embedded database is created on disk: slow on a busy machine.
    proc = await spawnTalkhub({ TALKHUB_JWT_SECRET: randomBytes(32).toString("hex"), TALKHUB_LOG_LEVEL: "silent" }, 90_000);
  }, 120_000);
  afterAll(() => proc?.stop(), 30_000);

  it("answers a path with a malformed percent-escape with an error and keeps running", async () => {
    if (proc === undefined) throw new Error("no service process");
    const agent = new HttpAgent({ keepAlive: false });
    try {
      for (const path of ["/%E0%A4%A", "/v1.0/talks/%E0%A4%A", "/v1.0/messages/m/reactions/%ZZ"]) {
        const reply = await httpRequest(agent, proc.url, "GET", path).catch((error: unknown) => ({ status: 0, text: String(error) }));
        expect(reply.status, `${path}: ${reply.text}`).toBeGreaterThanOrEqual(400);
        expect(reply.status, `${path}: ${reply.text}`).toBeLessThan(500);
      }
      expect((await httpRequest(agent, proc.url, "GET", "/healthz")).status).toBe(200);
      expect(proc.alive(), proc.output()).toBe(true);
    } finally {
      agent.destroy();
    }
  });
});

describe("path templates", () => {
  it("matches literal segments exactly", () => {
    const template = parsePathTemplate("/v1.0/talks");
    expect(matchPathTemplate(template, "/v1.0/talks")).toEqual(new Map());
    expect(matchPathTemplate(template, "/v1.0/talk")).toBeNull();
    expect(matchPathTemplate(template, "/v1.0/talks/x")).toBeNull();
    expect(matchPathTemplate(template, "/v1.0")).toBeNull();
    expect(matchPathTemplate(template, "/v2/talks")).toBeNull();
  });

  it("captures {field} as one segment", () => {
    const template = parsePathTemplate("/v1.0/talks/{chat_id}/participants/{participant_id}");
    expect(matchPathTemplate(template, "/v1.0/talks/abc/participants/def")).toEqual(
      new Map([
        ["chat_id", "abc"],
        ["participant_id", "def"],
      ]),
    );
    expect(matchPathTemplate(template, "/v1.0/talks/abc/participants")).toBeNull();
    expect(matchPathTemplate(template, "/v1.0/talks//participants/def")).toBeNull();
    expect(matchPathTemplate(template, "/v1.0/talks/abc/participants/def/more")).toBeNull();
    expect(matchPathTemplate(template, "/v1.0/talks/abc/members/def")).toBeNull();
  });

  it("URL-decodes captured fields", () => {
    const template = parsePathTemplate("/v1.0/messages/{message_id}/reactions/{emoji}");
    expect(matchPathTemplate(template, `/v1.0/messages/m1/reactions/${encodeURIComponent("👍")}`)?.get("emoji")).toBe("👍");
    expect(matchPathTemplate(template, `/v1.0/messages/m1/reactions/${encodeURIComponent("❤️")}`)?.get("emoji")).toBe("❤️");
    expect(matchPathTemplate(template, "/v1.0/messages/a%2Fb/reactions/x")?.get("message_id")).toBe("a/b");
    expect(matchPathTemplate(template, "/v1.0/messages/m1/reactions/thumbs%20up")?.get("emoji")).toBe("thumbs up");
    // A malformed escape does not match (and does not throw).
    expect(matchPathTemplate(template, "/v1.0/messages/m1/reactions/%E0%A4%A")).toBeNull();
  });

  it("captures the rest of the path with {field=**} and one segment with {field=*}", () => {
    const rest = parsePathTemplate("/v1/files/{name=**}");
    expect(matchPathTemplate(rest, "/v1/files/a/b/c.txt")?.get("name")).toBe("a/b/c.txt");
    expect(matchPathTemplate(rest, "/v1/files/one")?.get("name")).toBe("one");
    expect(matchPathTemplate(rest, "/v1/files/a%20b/c")?.get("name")).toBe("a b/c");
    expect(matchPathTemplate(rest, "/v1/other/a")).toBeNull();
    const one = parsePathTemplate("/v1/things/{id=*}");
    expect(matchPathTemplate(one, "/v1/things/t1")?.get("id")).toBe("t1");
    expect(matchPathTemplate(one, "/v1/things/t1/t2")).toBeNull();
  });

  it("captures dotted field paths", () => {
    const template = parsePathTemplate("/v1/{talk.id}/x");
    expect(matchPathTemplate(template, "/v1/7/x")?.get("talk.id")).toBe("7");
  });

  it("rejects malformed templates", () => {
    expect(() => parsePathTemplate("v1/talks")).toThrow();
    expect(() => parsePathTemplate("/v1/{id")).toThrow();
    expect(() => parsePathTemplate("/v1/pre{id}")).toThrow();
    expect(() => parsePathTemplate("/v1//talks")).toThrow();
  });
});
