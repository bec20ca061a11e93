/**
 * The verifier remembers verified tokens: jose's jwtVerify is wrapped in a spy to count the
 * signature checks that really run.
 */
import * as jose from "jose";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createVerifier, remembering } from "../../src/auth/verifier.js";
import type { Identity } from "../../src/domain/model/identity.js";
import { Unauthenticated } from "../../src/domain/model/errors.js";

vi.mock("jose", async (importOriginal) => {
  const actual = await importOriginal<typeof import("jose")>();
  return { ...actual, jwtVerify: vi.fn(actual.jwtVerify) };
});

const secret = "s3cret-for-unit-tests-at-least-32-bytes";
const agent = "0190a3b4-5c6d-7e8f-9a0b-1c2d3e4f5a6b";
const customer = "0190a3b4-0000-7000-8000-000000000001";
const jwtVerify = vi.mocked(jose.jwtVerify);
const start = new Date("2026-01-01T00:00:00Z").getTime();

const mint = (exp: number, name = "a") =>
  new jose.SignJWT({ sub: agent, customer_id: customer, name, exp })
    .setProtectedHeader({ alg: "HS256" })
    .sign(new TextEncoder().encode(secret));
const verifier = () => createVerifier({ secret, jwksUrl: undefined, issuer: undefined, audience: undefined });

beforeEach(() => {
  vi.useFakeTimers({ toFake: ["Date"], now: start });
  jwtVerify.mockClear();
});
afterEach(() => {
  vi.useRealTimers();
});

describe("remembered tokens", () => {
  it("checks a token once and answers the same identity after", async () => {
    const verify = verifier();
    const token = await mint(start / 1000 + 600);
    const first = await verify(token);
    expect(await verify(token)).toBe(first);
    expect(jwtVerify).toHaveBeenCalledTimes(1);
    await verify(await mint(start / 1000 + 600, "b"));
    expect(jwtVerify).toHaveBeenCalledTimes(2);
  });

  it("remembers per verifier", async () => {
    const token = await mint(start / 1000 + 600);
    await verifier()(token);
    await verifier()(token);
    expect(jwtVerify).toHaveBeenCalledTimes(2);
  });

  it("checks a remembered token again from its exp on, and refuses it then", async () => {
    const verify = verifier();
    const exp = start / 1000 + 60;
    const token = await mint(exp);
    await verify(token);
    vi.setSystemTime(exp * 1000 - 1);
    await verify(token);
    expect(jwtVerify).toHaveBeenCalledTimes(1);
    vi.setSystemTime(exp * 1000);
    await expect(verify(token)).rejects.toThrow(new Unauthenticated("the token has expired"));
    expect(jwtVerify).toHaveBeenCalledTimes(2);
  });

  it("forgets an expired token, so a verifier that then accepts it checks it anew", async () => {
    const verify = verifier();
    const exp = start / 1000 + 60;
    const token = await mint(exp);
    await verify(token);
    vi.setSystemTime(exp * 1000 + 1);
    // As if the clock were back: the token is valid again only to a fresh check.
    jwtVerify.mockImplementationOnce(
      async () => ({ payload: { sub: agent, customer_id: customer, exp: exp + 100 }, protectedHeader: { alg: "HS256" } }) as never,
    );
    expect((await verify(token)).expiresAt).toBe((exp + 100) * 1000);
    expect(await verify(token)).toEqual(expect.objectContaining({ expiresAt: (exp + 100) * 1000 }));
    expect(jwtVerify).toHaveBeenCalledTimes(2);
  });

  it("does not remember a refused token", async () => {
    const verify = verifier();
    const token = await mint(start / 1000 + 600);
    jwtVerify.mockRejectedValueOnce(Object.assign(new Error("bad"), { code: "ERR_JWS_SIGNATURE_VERIFICATION_FAILED" }));
    await expect(verify(token)).rejects.toThrow("the token is not valid");
    expect((await verify(token)).agentId).toBe(agent);
    expect(jwtVerify).toHaveBeenCalledTimes(2);
  });

  it("maps a non-object failure to an invalid token", async () => {
    const verify = verifier();
    jwtVerify.mockRejectedValueOnce("weird");
    await expect(verify(await mint(start / 1000 + 600))).rejects.toThrow(new Unauthenticated("the token is not valid"));
    jwtVerify.mockRejectedValueOnce(null);
    await expect(verify(await mint(start / 1000 + 600, "n"))).rejects.toThrow(new Unauthenticated("the token is not valid"));
  });

  it("remembers at most 10,000 tokens, forgetting the oldest first", async () => {
    // A stand-in for the signature check: the bound is what is under test.
    let checks = 0;
    const identity = { agentId: agent, customerId: customer, name: undefined, role: "agent", expiresAt: start + 600_000 } as const;
    const verify = remembering(async () => {
      checks++;
      return identity as unknown as Identity;
    });
    for (let i = 0; i < 10_000; i++) await verify(`t${i}`);
    await verify("t0");
    expect(checks).toBe(10_000);
    await verify("t10000");
    await verify("t2");
    expect(checks).toBe(10_001);
    await verify("t0");
    expect(checks).toBe(10_002);
    await verify("t3");
    expect(checks).toBe(10_002);
  });
});
