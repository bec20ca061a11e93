/**
 * Abuse limits: per-agent send and talk-creation rates (RESOURCE_EXHAUSTED with retry-after),
 * open streams per agent, reactions per message, page sizes, text and media sizes.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { ConnectError } from "@connectrpc/connect";
import { noAbuseLimits, type AbuseLimits } from "../../src/config.js";
import { backends, Code, expectCode, must, sleep, useService, type TestAgent } from "../support/harness.js";
import { httpCall, withTimeout } from "../support/security-helpers.js";

const abuse: AbuseLimits = {
  writes: { ...noAbuseLimits.writes, sends: { perSecond: 5, burst: 5 }, talkCreates: { perSecond: 0.1, burst: 3 } },
  streamsPerAgent: 2,
};

/** Settles every call; the codes in order ("ok" for a success) and the errors. */
async function settle(calls: Promise<unknown>[]): Promise<{ codes: string[]; errors: ConnectError[] }> {
  const results = await Promise.allSettled(calls);
  const errors: ConnectError[] = [];
  const codes = results.map((r) => {
    if (r.status === "fulfilled") return "ok";
    const e = ConnectError.from(r.reason);
    errors.push(e);
    return Code[e.code];
  });
  return { codes, errors };
}

async function talkOf(owner: TestAgent): Promise<string> {
  return must((await owner.talks.createTalk({ type: "group" })).talk).id;
}

describe.each(backends)("rate limits (sends 5/s burst 5, talk creates 6/min burst 3, 2 streams) on %s", (backend) => {
  const env = useService(backend, { abuse, live: { heartbeatMs: 500 }, agentVia: "grpc" });

  it("the 6th immediate send is RESOURCE_EXHAUSTED with retry-after, and succeeds after waiting (gRPC)", async () => {
    const ann = await env.agent(randomUUID(), "Ann", { via: "grpc" });
    const chatId = await talkOf(ann);
    const before = (await env.counts()).messages;
    const started = Date.now();
    const { codes, errors } = await settle(Array.from({ length: 6 }, (_, i) => ann.messages.sendMessage({ chatId, text: `m${i}` })));
    // The bucket refills 5 per second while the calls run: allow for that on a slow machine.
    const refill = Math.floor(((Date.now() - started) / 1000) * 5);
    const ok = codes.filter((c) => c === "ok").length;
    expect(ok).toBeGreaterThanOrEqual(5);
    expect(ok, `${ok} sent in ${Date.now() - started} ms`).toBeLessThanOrEqual(5 + refill);
    if (refill === 0) expect(errors).toHaveLength(1);
    const extra = refill === 0 ? [] : await settle(Array.from({ length: 6 }, () => ann.messages.sendMessage({ chatId, text: "more" })));
    const error = must([...errors, ...("errors" in extra ? extra.errors : [])][0]);
    expect(Code[error.code]).toBe("ResourceExhausted");
    const retryAfter = error.metadata.get("retry-after");
    expect(retryAfter, "retry-after metadata").toMatch(/^[1-9][0-9]*$/);
    expect((await env.counts()).messages - before).toBe(ok + ("codes" in extra ? extra.codes.filter((c) => c === "ok").length : 0));
    await sleep(Number(retryAfter) * 1000);
    await ann.messages.sendMessage({ chatId, text: "after waiting" });
  });

  it("the same over Connect and REST: HTTP 429 with Retry-After", async () => {
    const bob = await env.agent(randomUUID(), "Bob", { via: "connect" });
    const chatId = await talkOf(bob);
    const started = Date.now();
    const replies = await Promise.all(
      // 16 at once: on a loaded machine the bucket refills while they run, and 8 were seen to
      // all pass; 16 leave room for 11 refilled tokens before none would be refused.
      Array.from({ length: 16 }, (_, i) =>
        httpCall(env.url, "POST", `/v1.0/talks/${chatId}/messages`, {
          token: bob.token,
          body: JSON.stringify({ text: `r${i}` }),
          headers: { "Content-Type": "application/json" },
        }),
      ),
    );
    const refill = Math.floor(((Date.now() - started) / 1000) * 5);
    const ok = replies.filter((r) => r.status === 200).length;
    expect(ok).toBeGreaterThanOrEqual(5);
    expect(ok).toBeLessThanOrEqual(5 + refill);
    const limited = replies.filter((r) => r.status !== 200);
    expect(limited.length).toBeGreaterThanOrEqual(1);
    expect(new Set(limited.map((r) => r.status))).toEqual(new Set([429]));
    const reply = must(limited[0]);
    expect(reply.json?.code).toBe("resource_exhausted");
    const retryAfter = reply.headers.get("retry-after");
    expect(retryAfter).toMatch(/^[1-9][0-9]*$/);
    await sleep(Number(retryAfter) * 1000);
    const again = await httpCall(env.url, "POST", `/v1.0/talks/${chatId}/messages`, {
      token: bob.token,
      body: JSON.stringify({ text: "after waiting" }),
      headers: { "Content-Type": "application/json" },
    });
    expect(again.status, again.text).toBe(200);
    // Connect: the limit is per agent, across transports.
    const connect = await settle(Array.from({ length: 10 }, (_, i) => bob.messages.sendMessage({ chatId, text: `c${i}` })));
    expect(connect.codes).toContain("ResourceExhausted");
    expect(must(connect.errors[0]).metadata.get("retry-after")).toMatch(/^[1-9][0-9]*$/);
  });

  it("one agent's limit does not touch another agent", async () => {
    const customer = randomUUID();
    const noisy = await env.agent(customer, "Noisy");
    const quiet = await env.agent(customer, "Quiet");
    const chatId = must((await noisy.talks.createTalk({ type: "group", participantIds: [quiet.id] })).talk).id;
    // Bursts until the noisy agent is refused: PGlite runs the calls one after another, so its
    // bucket refills meanwhile and a fixed count of sends may all pass. Bounded: 20 bursts.
    let refused = false;
    for (let burst = 0; burst < 20 && !refused; burst++) {
      const { codes } = await settle(Array.from({ length: 8 }, () => noisy.messages.sendMessage({ chatId, text: "spam" })));
      refused = codes.includes(Code[Code.ResourceExhausted]);
    }
    expect(refused, "the noisy agent was never refused").toBe(true);
    await quiet.messages.sendMessage({ chatId, text: "still fine" });
  });

  it("the 4th immediate CreateTalk is RESOURCE_EXHAUSTED with retry-after", async () => {
    const cat = await env.agent(randomUUID(), "Cat", { via: "grpc" });
    // The agent's first call (registration) created no talk: the full burst is left.
    const before = (await env.counts()).talks;
    const { codes, errors } = await settle(Array.from({ length: 4 }, () => cat.talks.createTalk({ type: "group" })));
    // One new talk per 10 s: four calls this close together get exactly 3, even on a loaded machine.
    expect(codes.filter((c) => c === "ok")).toHaveLength(3);
    expect(errors.map((e) => Code[e.code])).toEqual(["ResourceExhausted"]);
    const retryAfter = must(errors[0]).metadata.get("retry-after");
    expect(retryAfter).toMatch(/^[1-9][0-9]*$/);
    expect((await env.counts()).talks - before).toBe(3);
    await sleep(Number(retryAfter) * 1000);
    await cat.talks.createTalk({ type: "group" });
    // REST: 429.
    const dan = await env.agent(randomUUID(), "Dan");
    const replies = await Promise.all(
      Array.from({ length: 4 }, () =>
        httpCall(env.url, "POST", "/v1.0/talks", { token: dan.token, body: "{}", headers: { "Content-Type": "application/json" } }),
      ),
    );
    expect(replies.map((r) => r.status).sort()).toEqual([200, 200, 200, 429]);
    expect(replies.find((r) => r.status === 429)?.headers.get("retry-after")).toMatch(/^[1-9][0-9]*$/);
  }, 60_000);

  it("a 3rd concurrent WatchTalk stream is RESOURCE_EXHAUSTED; closing one lets a new one open", async () => {
    const eve = await env.agent(randomUUID(), "Eve", { via: "grpc" });
    const chatId = await talkOf(eve);
    const open = (via: "grpc" | "connect" = "grpc") => {
      const abort = new AbortController();
      const iterator = env.as(eve, via).talks.watchTalk({ chatId, afterSeq: 0n }, { signal: abort.signal })[Symbol.asyncIterator]();
      const first = withTimeout(iterator.next(), 10_000, "first stream response");
      return { abort, first };
    };
    const one = open();
    const two = open("connect");
    await one.first;
    await two.first;
    const three = open();
    await expectCode(three.first, Code.ResourceExhausted);
    three.abort.abort();
    // WatchEvents counts against the same quota; so does REST.
    const feed = env
      .as(eve, "grpc")
      .talks.watchEvents({}, { signal: AbortSignal.timeout(10_000) })
      [Symbol.asyncIterator]();
    await expectCode(withTimeout(feed.next(), 10_000, "feed"), Code.ResourceExhausted);
    const rest = await httpCall(env.url, "GET", `/v1.0/talks/${chatId}/events`, { token: eve.token, firstLine: true, timeoutMs: 10_000 });
    expect(rest.status, rest.text).toBe(429);
    expect(rest.json?.code).toBe("resource_exhausted");
    // Another agent is not limited by Eve's streams.
    const other = await env.agent(eve.customerId, "Other");
    const otherFeed = other.talks.watchEvents({}, { signal: AbortSignal.timeout(10_000) })[Symbol.asyncIterator]();
    await withTimeout(otherFeed.next(), 10_000, "other feed");
    await otherFeed.return?.();
    // Closing one frees a slot (released when the server sees the cancel).
    one.abort.abort();
    const deadline = Date.now() + 5_000;
    for (;;) {
      const retry = open();
      try {
        await retry.first;
        retry.abort.abort();
        break;
      } catch (error) {
        retry.abort.abort();
        if (ConnectError.from(error).code !== Code.ResourceExhausted || Date.now() > deadline) throw error;
        await sleep(100);
      }
    }
    two.abort.abort();
  });
});

describe.each(backends)("size and count limits (no rate limits) on %s", (backend) => {
  const env = useService(backend, { agentVia: "grpc" });
  let full: { owner: TestAgent; messageId: string } | undefined;

  it("reactions per message: 500 (50 agents x 10 emoji) are taken, the 501st is RESOURCE_EXHAUSTED", async () => {
    const customer = randomUUID();
    const agents: TestAgent[] = [];
    for (let i = 0; i < 50; i += 10)
      agents.push(...(await Promise.all(Array.from({ length: 10 }, (_, j) => env.agent(customer, `R${i + j}`)))));
    const owner = must(agents[0]);
    const talk = must((await owner.talks.createTalk({ type: "group", participantIds: agents.slice(1).map((a) => a.id) })).talk);
    expect(talk.memberCount).toBe(50);
    const message = must((await owner.messages.sendMessage({ chatId: talk.id, text: "react!" })).message);
    const emoji = Array.from({ length: 10 }, (_, i) => `e${i}`);
    for (let i = 0; i < agents.length; i += 10) {
      await Promise.all(
        agents.slice(i, i + 10).map(async (agent) => {
          for (const e of emoji) await agent.messages.addReaction({ messageId: message.id, emoji: e });
        }),
      );
    }
    const reacted = must((await owner.messages.getMessage({ id: message.id })).message);
    expect(reacted.metadata?.reactions).toHaveLength(500);
    const before = await env.counts();
    await expectCode(owner.messages.addReaction({ messageId: message.id, emoji: "e10" }), Code.ResourceExhausted);
    await expectCode(
      httpCall(env.url, "POST", `/v1.0/messages/${message.id}/reactions`, {
        token: owner.token,
        body: '{"emoji":"x"}',
        headers: { "Content-Type": "application/json" },
      }).then((r) => {
        if (r.status !== 429) throw new Error(`HTTP ${r.status} ${r.text}`);
        throw new ConnectError(String(r.json?.message), Code.ResourceExhausted);
      }),
      Code.ResourceExhausted,
    );
    expect(await env.counts()).toEqual(before);
    // Removing one makes room for one.
    await owner.messages.removeReaction({ messageId: message.id, emoji: "e0" });
    await owner.messages.addReaction({ messageId: message.id, emoji: "e10" });
    await expectCode(owner.messages.addReaction({ messageId: message.id, emoji: "e11" }), Code.ResourceExhausted);
    full = { owner, messageId: message.id };
  }, 120_000);

  it("at the reaction limit, adding an existing reaction again is still the documented no-op", async () => {
    const { owner, messageId } = must(full, "the full message of the previous test");
    const before = await env.counts();
    const again = must((await owner.messages.addReaction({ messageId, emoji: "e1" })).message);
    expect(again.metadata?.reactions).toHaveLength(500);
    expect(await env.counts()).toEqual(before);
  });

  it("page_size over 200 is clamped to 200; negative is INVALID_ARGUMENT", async () => {
    const customer = randomUUID();
    const admin = await env.agent(customer, "Admin", { role: "admin" });
    for (let i = 0; i < 210; i += 30) {
      await Promise.all(
        Array.from({ length: Math.min(30, 210 - i) }, (_, j) => admin.agents.createAgent({ name: `A${String(i + j).padStart(3, "0")}` })),
      );
    }
    const chatId = must((await admin.talks.createTalk({ type: "group" })).talk).id;
    for (let i = 0; i < 205; i += 25) {
      await Promise.all(Array.from({ length: Math.min(25, 205 - i) }, (_, j) => admin.messages.sendMessage({ chatId, text: `m${i + j}` })));
    }
    for (let i = 0; i < 205; i += 25)
      await Promise.all(Array.from({ length: Math.min(25, 205 - i) }, () => admin.talks.createTalk({ type: "group" })));
    for (const pageSize of [201, 1000, 2 ** 31 - 1]) {
      const agents = await admin.agents.listAgents({ pageSize });
      expect(agents.result).toHaveLength(200);
      expect(agents.nextPageToken).not.toBe("");
      const messages = await admin.messages.listMessages({ chatId, pageSize });
      expect(messages.result).toHaveLength(200);
      expect(messages.nextPageToken).not.toBe("");
      const talks = await admin.talks.listTalks({ pageSize });
      expect(talks.result).toHaveLength(200);
      expect(talks.nextPageToken).not.toBe("");
    }
    for (const path of ["/v1.0/agents?page_size=5000", `/v1.0/talks/${chatId}/messages?page_size=5000`, "/v1.0/talks?page_size=5000"]) {
      const reply = await httpCall(env.url, "GET", path, { token: admin.token });
      expect(reply.status, reply.text).toBe(200);
      expect(reply.json?.result).toHaveLength(200);
    }
    await expectCode(admin.agents.listAgents({ pageSize: -1 }), Code.InvalidArgument, "page_size");
    await expectCode(admin.messages.listMessages({ chatId, pageSize: -1 }), Code.InvalidArgument, "page_size");
    await expectCode(admin.talks.listTalks({ pageSize: -(2 ** 31) }), Code.InvalidArgument, "page_size");
  }, 120_000);

  it("text: 10,000 characters ok, 10,001 INVALID_ARGUMENT (code points, not UTF-16 units)", async () => {
    const ann = await env.agent(randomUUID(), "Ann");
    const chatId = await talkOf(ann);
    expect(must((await ann.messages.sendMessage({ chatId, text: "a".repeat(10_000) })).message).text).toHaveLength(10_000);
    expect([...must((await ann.messages.sendMessage({ chatId, text: "😀".repeat(10_000) })).message).text]).toHaveLength(10_000);
    const before = await env.counts();
    await expectCode(ann.messages.sendMessage({ chatId, text: "a".repeat(10_001) }), Code.InvalidArgument, "text");
    await expectCode(ann.messages.sendMessage({ chatId, text: "😀".repeat(10_001) }), Code.InvalidArgument, "text");
    const rest = await httpCall(env.url, "POST", `/v1.0/talks/${chatId}/messages`, {
      token: ann.token,
      body: JSON.stringify({ text: "b".repeat(10_001) }),
      headers: { "Content-Type": "application/json" },
    });
    expect(rest.status).toBe(400);
    expect(rest.json?.code).toBe("invalid_argument");
    expect(await env.counts()).toEqual(before);
    // Edits follow the same limit.
    const message = must((await ann.messages.sendMessage({ chatId, text: "short" })).message);
    await ann.messages.updateMessage({ id: message.id, text: "c".repeat(10_000) });
    await expectCode(ann.messages.updateMessage({ id: message.id, text: "c".repeat(10_001) }), Code.InvalidArgument, "text");
  });

  it("medias: 10 ok, 11 INVALID_ARGUMENT", async () => {
    const ann = await env.agent(randomUUID(), "Ann");
    const chatId = await talkOf(ann);
    const media = (i: number) => ({ type: "application/pdf", url: `https://files.example/${i}.pdf`, name: `${i}.pdf` });
    const ten = must(
      (await ann.messages.sendMessage({ chatId, text: "", medias: Array.from({ length: 10 }, (_, i) => media(i)) })).message,
    );
    expect(ten.medias).toHaveLength(10);
    const before = await env.counts();
    await expectCode(
      ann.messages.sendMessage({ chatId, text: "x", medias: Array.from({ length: 11 }, (_, i) => media(i)) }),
      Code.InvalidArgument,
      "medias",
    );
    const rest = await httpCall(env.url, "POST", `/v1.0/talks/${chatId}/messages`, {
      token: ann.token,
      body: JSON.stringify({ text: "x", medias: Array.from({ length: 11 }, (_, i) => media(i)) }),
      headers: { "Content-Type": "application/json" },
    });
    expect(rest.status).toBe(400);
    expect(rest.json?.code).toBe("invalid_argument");
    expect(await env.counts()).toEqual(before);
  });
});
