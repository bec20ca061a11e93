/**
 * Rate limits on every write, per agent and class of write: a class's burst is taken, the next
 * write of that class is RESOURCE_EXHAUSTED with retry-after and changes nothing, other
 * classes and other agents are untouched; and two services on one Postgres share one budget.
 * Buckets refill one token a minute, so counts are exact however slow the machine is.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, noAbuseLimits, readConfig, type AbuseLimits } from "../../src/config.js";
import { ResourceExhausted } from "../../src/domain/model/errors.js";
import type { AgentId, CustomerId } from "../../src/domain/model/ids.js";
import type { Identity } from "../../src/domain/model/identity.js";
import { WriteLimits, writeClasses, type TakeTokens, type TokenRequest } from "../../src/domain/write/write-limits.js";
import { openDatabase, type Database } from "../../src/store/database.js";
import { pruneFullBuckets, takeTokens } from "../../src/store/rate-bucket-store.js";
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

const slow = (burst: number) => ({ perSecond: 1 / 60, burst });

const abuse: AbuseLimits = {
  writes: {
    sends: slow(3),
    talkCreates: slow(3),
    participants: slow(2),
    reactions: slow(2),
    edits: slow(2),
    deletes: slow(2),
    talkStatus: slow(2),
    agentAdmin: slow(2),
  },
  streamsPerAgent: 0,
};

/** A refused write: RESOURCE_EXHAUSTED with a retry-after of at most the refill of one token. */
async function expectLimited(call: Promise<unknown>): Promise<void> {
  const error = await expectCode(call, Code.ResourceExhausted);
  const retryAfter = error.metadata.get("retry-after");
  expect(retryAfter, "retry-after").toMatch(/^[1-9][0-9]*$/);
  expect(Number(retryAfter)).toBeLessThanOrEqual(60);
}

/** Settles calls made together; how many succeeded, and every failure's code. */
async function settle(calls: Promise<unknown>[]): Promise<{ ok: number; refused: Code[] }> {
  const results = await Promise.allSettled(calls);
  const refused: Code[] = [];
  for (const r of results) {
    if (r.status === "rejected") refused.push((await expectCode(Promise.reject(r.reason), Code.ResourceExhausted)).code);
  }
  return { ok: results.length - refused.length, refused };
}

/** Two agents of a new customer in a group talk; the first made it. */
async function pairOn(env: TestEnv): Promise<{ owner: TestAgent; other: TestAgent; chatId: string }> {
  const customer = newCustomer();
  const owner = await env.agent(customer, "Owner");
  const other = await env.agent(customer, "Other");
  const talk = await createTalk(owner, [other]);
  return { owner, other, chatId: talk.id };
}

describe.each(backends)("write limits (%s)", (backend) => {
  const env: TestEnv = useService(backend, { abuse });

  const pair = () => pairOn(env);

  it("sends: the burst, then RESOURCE_EXHAUSTED, and the refused message is not written", async () => {
    const { owner, chatId } = await pair();
    for (let i = 0; i < 3; i++) await sendText(owner, chatId, `m${i}`);
    await expectLimited(owner.messages.sendMessage({ chatId, text: "one too many" }));
    const page = await owner.messages.listMessages({ chatId, pageSize: 50 });
    expect(page.result.map((m) => m.text).filter((t) => t.startsWith("m") || t === "one too many")).toEqual(["m2", "m1", "m0"]);
  });

  it("talk creates: the burst, then RESOURCE_EXHAUSTED, and no talk is created", async () => {
    const ann = await env.agent(newCustomer(), "Ann");
    for (let i = 0; i < 3; i++) await createTalk(ann, []);
    await expectLimited(ann.talks.createTalk({ type: "group" }));
    expect((await ann.talks.listTalks({ pageSize: 50 })).result).toHaveLength(3);
  });

  it("participants: add and remove share a class; the refused add changes nothing", async () => {
    const { owner, other, chatId } = await pair();
    const third = await env.agent(owner.customerId, "Third");
    const added = must((await owner.talks.addParticipant({ chatId, agentId: third.id })).participant);
    await owner.talks.removeParticipant({ chatId, participantId: added.id });
    await expectLimited(owner.talks.addParticipant({ chatId, agentId: third.id }));
    const otherPart = must((await owner.talks.listParticipants({ chatId })).result.find((p) => p.ownerId === other.id));
    await expectLimited(owner.talks.removeParticipant({ chatId, participantId: otherPart.id }));
    const owners = (await owner.talks.listParticipants({ chatId })).result.map((p) => p.ownerId).sort();
    expect(owners).toEqual([owner.id, other.id].sort());
    // Another agent still has its own budget; sends are another class.
    await other.talks.addParticipant({ chatId, agentId: third.id });
    await sendText(owner, chatId, "sends are not participants");
  });

  it("reactions: add and remove share a class; the refused one changes nothing", async () => {
    const { owner, other, chatId } = await pair();
    const message = await sendText(owner, chatId, "react to me");
    await other.messages.addReaction({ messageId: message.id, emoji: "👍" });
    await other.messages.removeReaction({ messageId: message.id, emoji: "👍" });
    await expectLimited(other.messages.addReaction({ messageId: message.id, emoji: "🎉" }));
    const after = must((await owner.messages.getMessage({ id: message.id })).message);
    expect(after.metadata?.reactions ?? []).toEqual([]);
  });

  it("edits: UpdateMessage and UpdateTalk share a class; the refused edit changes nothing", async () => {
    const { owner, chatId } = await pair();
    const message = await sendText(owner, chatId, "first");
    await owner.messages.updateMessage({ id: message.id, text: "second" });
    await owner.talks.updateTalk({ id: chatId, name: "renamed" });
    await expectLimited(owner.messages.updateMessage({ id: message.id, text: "third" }));
    await expectLimited(owner.talks.updateTalk({ id: chatId, name: "again" }));
    expect(must((await owner.messages.getMessage({ id: message.id })).message).text).toBe("second");
    expect(must((await owner.talks.getTalk({ id: chatId })).talk).name).toBe("renamed");
  });

  it("deletes: DeleteMessage and DeleteTalk share a class; the refused delete changes nothing", async () => {
    const { owner, chatId } = await pair();
    const messages = [await sendText(owner, chatId, "a"), await sendText(owner, chatId, "b"), await sendText(owner, chatId, "c")];
    await owner.messages.deleteMessage({ id: must(messages[0]).id });
    await owner.messages.deleteMessage({ id: must(messages[1]).id });
    await expectLimited(owner.messages.deleteMessage({ id: must(messages[2]).id }));
    await expectLimited(owner.talks.deleteTalk({ id: chatId }));
    expect(must((await owner.messages.getMessage({ id: must(messages[2]).id })).message).text).toBe("c");
    expect(must((await owner.talks.getTalk({ id: chatId })).talk).id).toBe(chatId);
  });

  it("close and reopen share a class; the refused close changes nothing", async () => {
    const { owner, chatId } = await pair();
    await owner.talks.closeTalk({ id: chatId });
    await owner.talks.reopenTalk({ id: chatId });
    await expectLimited(owner.talks.closeTalk({ id: chatId }));
    expect(must((await owner.talks.getTalk({ id: chatId })).talk).status).toBe("active");
  });

  it("agent admin writes: create, update and delete share a class; the refused one changes nothing", async () => {
    const admin = await env.agent(newCustomer(), "Admin", { role: "admin" });
    const created = must((await admin.agents.createAgent({ name: "Zed" })).agent);
    await admin.agents.updateAgent({ id: created.id, name: "Zed 2" });
    await expectLimited(admin.agents.deleteAgent({ id: created.id }));
    await expectLimited(admin.agents.createAgent({ name: "Yan" }));
    expect(must((await admin.agents.getAgent({ id: created.id })).agent).name).toBe("Zed 2");
    expect((await admin.agents.listAgents({ pageSize: 50 })).result.map((a) => a.name).sort()).toEqual(["Admin", "Zed 2"]);
  });

  it("a burst of concurrent writes of one class gets exactly the burst", async () => {
    const { owner, other, chatId } = await pair();
    const message = await sendText(owner, chatId, "many emoji");
    const { ok, refused } = await settle(
      Array.from({ length: 8 }, (_, i) => other.messages.addReaction({ messageId: message.id, emoji: `e${i}` })),
    );
    expect(ok).toBe(2);
    expect(refused).toHaveLength(6);
    expect(must((await owner.messages.getMessage({ id: message.id })).message).metadata?.reactions).toHaveLength(2);
  });
});

// Two services share one database only on Postgres (the embedded database has one process).
describe.each(backends.filter((b) => b === "postgres"))("write limits across services (%s)", (backend) => {
  const env: TestEnv = useService(backend, { abuse });
  const pair = () => pairOn(env);

  it("two services on one database share one budget per agent and class", async () => {
    const second = await env.sibling({ abuse });
    const { owner, chatId } = await pair();
    const there = second.as(owner);
    const sends = await settle(
      Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? owner : there).messages.sendMessage({ chatId, text: `s${i}` })),
    );
    expect(sends.ok).toBe(3);
    const sent = (await owner.messages.listMessages({ chatId, pageSize: 50 })).result.filter((m) => /^s[0-9]$/.test(m.text));
    expect(sent).toHaveLength(3);
    // Talk creates: one was taken by pair(); the other two and no more, over both services.
    const creates = await settle(Array.from({ length: 6 }, (_, i) => (i % 2 === 0 ? owner : there).talks.createTalk({ type: "group" })));
    expect(creates.ok).toBe(2);
    expect((await owner.talks.listTalks({ pageSize: 50 })).result).toHaveLength(3);
    // A refusal answered by one service holds on the other.
    await expectLimited(there.messages.sendMessage({ chatId, text: "there" }));
    await expectLimited(owner.messages.sendMessage({ chatId, text: "here" }));
  });
});

describe("WriteLimits with a fake store", () => {
  const rates = { ...noAbuseLimits.writes, reactions: { perSecond: 0.5, burst: 3 } };
  const caller = (agentId: string): Identity => ({
    agentId: agentId as AgentId,
    customerId: "c" as CustomerId,
    name: undefined,
    role: "agent",
    expiresAt: Infinity,
  });

  /** A store whose buckets hold `tokens` each, never refilling; it records every statement. */
  function fakeStore(tokens: number) {
    const left = new Map<string, number>();
    const calls: TokenRequest[][] = [];
    const take: TakeTokens = async (requests) => {
      calls.push([...requests]);
      return requests.map((r) => {
        const have = left.get(r.agentId) ?? tokens;
        const granted = Math.min(r.count, Math.floor(have));
        left.set(r.agentId, have - granted);
        return { granted, left: have - granted };
      });
    };
    return { take, calls };
  }

  it("takes made together go in one statement, per bucket; the first in line get the tokens", async () => {
    const store = fakeStore(3);
    const limits = new WriteLimits(rates, store.take);
    const results = await Promise.allSettled([
      ...Array.from({ length: 5 }, () => limits.take(caller("a"), "reactions")),
      limits.take(caller("b"), "reactions"),
    ]);
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "fulfilled", "fulfilled", "rejected", "rejected", "fulfilled"]);
    expect(store.calls).toHaveLength(1);
    expect(store.calls[0]?.map((r) => [r.agentId, r.count])).toEqual([
      ["a", 5],
      ["b", 1],
    ]);
    const refused = (results[3] as PromiseRejectedResult).reason as ResourceExhausted;
    expect(refused.kind).toBe("resource_exhausted");
    // No token left, one every two seconds.
    expect(refused.retryAfterMs).toBe(2000);
  });

  it("after a refusal, the process refuses without a round trip until a token is due", async () => {
    let now = 1_000_000;
    const store = fakeStore(1);
    const limits = new WriteLimits(rates, store.take, () => now);
    await limits.take(caller("a"), "reactions");
    await expect(limits.take(caller("a"), "reactions")).rejects.toMatchObject({ retryAfterMs: 2000 });
    expect(store.calls).toHaveLength(2);
    now += 1500;
    await expect(limits.take(caller("a"), "reactions")).rejects.toMatchObject({ retryAfterMs: 500 });
    expect(store.calls).toHaveLength(2);
    now += 500;
    await expect(limits.take(caller("a"), "reactions")).rejects.toBeInstanceOf(ResourceExhausted);
    expect(store.calls).toHaveLength(3);
  });

  it("an unlimited class costs nothing; a store error fails every take of its statement", async () => {
    const store = fakeStore(0);
    const limits = new WriteLimits(rates, store.take);
    await limits.take(caller("a"), "sends");
    expect(store.calls).toHaveLength(0);
    const failing = new WriteLimits(rates, async () => {
      throw new Error("down");
    });
    const results = await Promise.allSettled([failing.take(caller("a"), "reactions"), failing.take(caller("b"), "reactions")]);
    expect(results.map((r) => r.status === "rejected" && (r.reason as Error).message)).toEqual(["down", "down"]);
  });
});

describe("the rate_buckets statement (embedded database)", () => {
  let database: Database | undefined;
  beforeAll(async () => {
    database = await openDatabase({ kind: "pglite", dataDir: null });
  });
  afterAll(() => database?.close());

  it("gives min(asked, whole tokens) per bucket, keys uuids in any case, and prunes only full buckets", async () => {
    const db = must(database).db;
    const customerId = randomUUID() as CustomerId;
    const [a, b] = [randomUUID(), randomUUID()];
    const request = (agentId: string, count: number) =>
      ({ customerId, agentId: agentId as AgentId, writeClass: "edits", count, rate: { perSecond: 1 / 600, burst: 5 } }) as const;
    const first = await takeTokens(db, [request(a, 3), request(b, 9)]);
    expect(first.map((g) => g.granted)).toEqual([3, 5]);
    const second = await takeTokens(db, [request(b.toUpperCase(), 1), request(a, 4)]);
    expect(second.map((g) => g.granted)).toEqual([0, 2]);
    expect(must(second[1]).left).toBeLessThan(1);
    // A fast bucket is full again at once; the slow ones are not.
    await takeTokens(db, [{ ...request(randomUUID(), 1), rate: { perSecond: 1_000_000, burst: 1 } }]);
    await sleep(5);
    expect(await pruneFullBuckets(db, 100)).toBe(1);
    expect((await takeTokens(db, [request(a, 1)]))[0]?.granted).toBe(0);
  });
});

describe("write limit settings", () => {
  it("defaults keep the send and talk-create variables as they were; every class has a rate and a burst", () => {
    const writes = readConfig({}).abuse?.writes;
    expect(writes?.sends).toEqual({ perSecond: 20, burst: 50 });
    expect(writes?.talkCreates).toEqual({ perSecond: 1, burst: 20 });
    for (const c of writeClasses) expect(writes?.[c].perSecond, c).toBeGreaterThan(0);
    const set = readConfig({
      TALKHUB_TALK_CREATE_RATE: "30",
      TALKHUB_REACTION_RATE: "0.5",
      TALKHUB_REACTION_BURST: "4",
      TALKHUB_DELETE_RATE: "0",
    });
    expect(set.abuse?.writes.talkCreates.perSecond).toBe(0.5);
    expect(set.abuse?.writes.reactions).toEqual({ perSecond: 0.5, burst: 4 });
    expect(set.abuse?.writes.deletes.perSecond).toBe(0);
  });

  it("a bad value names its variable", () => {
    expect(() => readConfig({ TALKHUB_EDIT_RATE: "-1" })).toThrow(/TALKHUB_EDIT_RATE/);
    expect(() => readConfig({ TALKHUB_EDIT_RATE: "fast" })).toThrow(ConfigError);
    expect(() => readConfig({ TALKHUB_AGENT_ADMIN_BURST: "0" })).toThrow(/TALKHUB_AGENT_ADMIN_BURST/);
  });
});
