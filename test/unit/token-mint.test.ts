import { decodeJwt, decodeProtectedHeader, jwtVerify } from "jose";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { mintToken } from "../../src/auth/tokens.js";
import { createVerifier } from "../../src/auth/verifier.js";

const secret = "s3cret-for-unit-tests-at-least-32-bytes";
const agentId = "0190a3b4-5c6d-7e8f-9a0b-1c2d3e4f5a6b";
const customerId = "0190a3b4-0000-7000-8000-000000000001";
const now = new Date("2026-03-04T05:06:07.890Z");

beforeEach(() => vi.useFakeTimers({ toFake: ["Date"], now }));
afterEach(() => vi.useRealTimers());

describe("mintToken", () => {
  it("mints an HS256 JWT with the claims, valid for 30 days by default", async () => {
    const token = await mintToken(secret, { customerId, agentId });
    expect(decodeProtectedHeader(token)).toEqual({ alg: "HS256", typ: "JWT" });
    const iat = Math.floor(now.getTime() / 1000);
    expect(decodeJwt(token)).toEqual({ customer_id: customerId, sub: agentId, iat, exp: iat + 30 * 24 * 3600 });
    await expect(jwtVerify(token, new TextEncoder().encode(secret))).resolves.toBeDefined();
  });

  it("adds name and role when given, and the lifetime asked for", async () => {
    const token = await mintToken(secret, { customerId, agentId, name: "Ann", role: "admin", expiresInSeconds: 90 });
    const iat = Math.floor(now.getTime() / 1000);
    expect(decodeJwt(token)).toEqual({ customer_id: customerId, sub: agentId, name: "Ann", role: "admin", iat, exp: iat + 90 });
  });

  it("mints what the verifier accepts with the same secret only", async () => {
    const token = await mintToken(secret, { customerId, agentId, name: "Ann", role: "admin", expiresInSeconds: 60 });
    const verify = createVerifier({ secret, jwksUrl: undefined, issuer: undefined, audience: undefined });
    expect(await verify(token)).toEqual({
      agentId,
      customerId,
      name: "Ann",
      role: "admin",
      expiresAt: (Math.floor(now.getTime() / 1000) + 60) * 1000,
    });
    const other = createVerifier({ secret: `${secret}x`, jwksUrl: undefined, issuer: undefined, audience: undefined });
    await expect(other(token)).rejects.toThrow("the token is not valid");
  });
});
