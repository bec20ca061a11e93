/**
 * Values a client can get wrong that reach the store or the clock: NUL and control characters
 * in media and in the token's name, page tokens and WatchEvents cursors out of range or too
 * large, tokens without `exp`. Each is INVALID_ARGUMENT or UNAUTHENTICATED, never INTERNAL (the
 * code every unexpected error becomes, and the only one logged at error level), and the
 * process goes on answering.
 */
import { randomUUID } from "node:crypto";
import { SignJWT } from "jose";
import { afterEach, describe, expect, it } from "vitest";
import { createVerifier } from "../../src/auth/verifier.js";
import { ConfigError, readConfig } from "../../src/config.js";
import { FeedCursor } from "../../src/live/feed-cursor.js";
import { InvalidArgument } from "../../src/domain/model/errors.js";
import { backends, Code, createTalk, expectCode, newCustomer, sendText, useService, type TestAgent } from "../support/harness.js";
import { codeOf } from "../support/security-helpers.js";

const encode = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString("base64url");

/** The code a WatchEvents call with `cursor` ends with before its first response ("ok" once one arrives). */
function feedFrom(agent: TestAgent, cursor: string): Promise<string> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), 10_000);
  return codeOf(
    (async () => {
      for await (const response of agent.talks.watchEvents({ cursor }, { signal: controller.signal })) {
        expect(response.cursor.length).toBeLessThanOrEqual(64 * 1024);
        break;
      }
    })(),
  ).finally(() => {
    clearTimeout(timer);
    controller.abort();
  });
}

describe("FeedCursor.decode", () => {
  const now = new Date("2026-12-01T12:00:00Z");
  const talk = randomUUID();
  const refused = (token: string) => expect(() => FeedCursor.decode("cursor", token, now)).toThrow(InvalidArgument);

  it("takes back what it encodes", () => {
    const cursor = FeedCursor.startingAt(now, [{ talkId: talk as never, lastSeq: 7, tmActivity: now }]);
    const again = FeedCursor.decode("cursor", cursor.encode(), now);
    expect(again.seqOf(talk as never)).toBe(7);
    expect(again.watermarkTime.getTime()).toBe(cursor.watermarkTime.getTime());
  });

  it("refuses out-of-range watermarks and seqs", () => {
    for (const w of [-1, now.getTime() + 10 * 60_000, 9e15, 8.64e15 + 1, 2 ** 53, 1.5, "1"]) refused(encode({ w, s: {} }));
    for (const seq of [-1, 2 ** 53, 1.5, "3", null]) refused(encode({ w: 0, s: { [talk]: seq } }));
    refused(encode({ w: 0, s: [] }));
    // A watermark within the clock skew of another process is taken.
    expect(FeedCursor.decode("cursor", encode({ w: now.getTime() + 30_000, s: {} }), now).watermarkTime.getTime()).toBe(
      now.getTime() + 30_000,
    );
  });

  it("refuses a token larger than 64 KiB before decoding it", () => {
    refused("A".repeat(64 * 1024 + 1));
    const s = Object.fromEntries(Array.from({ length: 1_600 }, () => [randomUUID(), 1]));
    refused(encode({ w: 0, s }));
  });
});

describe("tokens without exp", () => {
  const secret = "a-test-secret-of-enough-length-0123456789";
  const withoutExp = () =>
    new SignJWT({ customer_id: randomUUID() })
      .setSubject(randomUUID())
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setIssuedAt()
      .sign(new TextEncoder().encode(secret));

  it("are refused by default and accepted when configured", async () => {
    const strict = createVerifier({ secret, jwksUrl: undefined, issuer: undefined, audience: undefined });
    await expect(strict(await withoutExp())).rejects.toThrow("the token has no exp claim");
    const lenient = createVerifier({ secret, jwksUrl: undefined, issuer: undefined, audience: undefined, allowTokensWithoutExp: true });
    expect((await lenient(await withoutExp())).expiresAt).toBe(Infinity);
  });

  it("TALKHUB_ALLOW_TOKENS_WITHOUT_EXP is false by default", () => {
    expect(readConfig({}).auth.allowTokensWithoutExp).toBe(false);
    expect(readConfig({ TALKHUB_ALLOW_TOKENS_WITHOUT_EXP: "true" }).auth.allowTokensWithoutExp).toBe(true);
    expect(() => readConfig({ TALKHUB_ALLOW_TOKENS_WITHOUT_EXP: "yes please" })).toThrow(ConfigError);
  });
});

describe.each(backends)("bad values on %s", (backend) => {
  // What the service would log at error level: nothing a client sends may end up there.
  const unexpected: string[] = [];
  const env = useService(backend, { onError: (error, where) => unexpected.push(`${where}: ${String(error)}`) });
  afterEach(() => expect(unexpected.splice(0)).toEqual([]));

  it("a token without exp is UNAUTHENTICATED", async () => {
    const token = await new SignJWT({ customer_id: newCustomer() })
      .setSubject(randomUUID())
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setIssuedAt()
      .sign(new TextEncoder().encode(env.secret));
    await expectCode(env.clients(token, "connect").talks.listTalks({}), Code.Unauthenticated, "no exp");
  });

  it("NUL and control characters in media URLs and names are INVALID_ARGUMENT", async () => {
    const agent = await env.agent(newCustomer(), "Ann");
    const talk = await createTalk(agent, []);
    const media = { type: "image/png", url: "https://example.com/a.png", name: "a.png" };
    const bad: [Partial<typeof media>, string][] = [
      [{ url: "https://example.com/a\u0000b.png" }, "medias[0].url"],
      [{ url: "https://example.com/a\u0007b.png" }, "medias[0].url"],
      [{ url: "https://example.com/a\u009fb.png" }, "medias[0].url"],
      [{ name: "a\u0000.png" }, "medias[0].name"],
      [{ name: "a\u001b[31m.png" }, "medias[0].name"],
    ];
    for (const [change, field] of bad) {
      await expectCode(
        agent.messages.sendMessage({ chatId: talk.id, text: "x", medias: [{ ...media, ...change }] }),
        Code.InvalidArgument,
        field,
      );
    }
    expect((await agent.messages.listMessages({ chatId: talk.id })).result.filter((m) => m.text === "x")).toEqual([]);
    await sendText(agent, talk.id, "still answering");
  });

  it("a NUL or control character in the token's name is UNAUTHENTICATED", async () => {
    for (const name of ["Ann\u0000", "Ann\u0007", "\u001b[2JAnn"]) {
      const token = await new SignJWT({ customer_id: newCustomer(), name })
        .setSubject(randomUUID())
        .setProtectedHeader({ alg: "HS256", typ: "JWT" })
        .setIssuedAt()
        .setExpirationTime("1h")
        .sign(new TextEncoder().encode(env.secret));
      await expectCode(env.clients(token, "grpc").talks.listTalks({}), Code.Unauthenticated, "name");
    }
    await env.agent(newCustomer(), "Ann");
  });

  it("page tokens with out-of-range dates, numbers or NUL are INVALID_ARGUMENT", async () => {
    const customer = newCustomer();
    const agent = await env.agent(customer, "Ann");
    const admin = await env.agent(customer, "Ada", { role: "admin" });
    await createTalk(agent, []);
    for (const time of [9e15, 8.64e15, -8.64e15, -1, 2 ** 53 - 1]) {
      await expectCode(agent.talks.listTalks({ pageToken: encode([time, randomUUID()]) }), Code.InvalidArgument, "page_token");
    }
    const talk = await createTalk(agent, []);
    for (const seq of [-1, 2 ** 53 - 1]) {
      await expectCode(agent.messages.listMessages({ chatId: talk.id, pageToken: encode([seq]) }), Code.InvalidArgument, "page_token");
    }
    await expectCode(admin.agents.listAgents({ pageToken: encode(["a\u0000b", randomUUID()]) }), Code.InvalidArgument, "page_token");
    // A page token the service made still works.
    await createTalk(agent, []);
    const first = await agent.talks.listTalks({ pageSize: 1 });
    expect((await agent.talks.listTalks({ pageSize: 1, pageToken: first.nextPageToken })).result).toHaveLength(1);
  });

  it("WatchEvents cursors: too large, future or out-of-range watermarks, bad seqs are INVALID_ARGUMENT", async () => {
    const agent = await env.agent(newCustomer(), "Ann");
    const talk = await createTalk(agent, []);
    const now = Date.now();
    const huge = encode({ w: now - 120_000, s: Object.fromEntries(Array.from({ length: 1_600 }, () => [randomUUID(), 1])) });
    expect(huge.length).toBeGreaterThan(64 * 1024);
    const cursors = [
      huge,
      encode({ w: now + 24 * 3600_000, s: {} }),
      encode({ w: 9e15, s: {} }),
      encode({ w: -8.64e15, s: {} }),
      encode({ w: -1, s: {} }),
      encode({ w: now - 120_000, s: { [talk.id]: -1 } }),
      encode({ w: now - 120_000, s: { [talk.id]: 2 ** 53 } }),
    ];
    for (const cursor of cursors) expect(await feedFrom(agent, cursor), cursor.slice(0, 80)).toBe("invalid_argument");
    // A cursor the service made resumes.
    const made = agent.talks.watchEvents({}, { signal: AbortSignal.timeout(10_000) });
    let cursor = "";
    for await (const response of made) {
      cursor = response.cursor;
      break;
    }
    expect(await feedFrom(agent, cursor)).toBe("ok");
  });
});
