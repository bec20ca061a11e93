import { randomBytes, randomUUID } from "node:crypto";
import { SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { mintToken } from "../../src/auth/tokens.js";
import { Code, backends, expectCode, newCustomer, sleep, useService } from "../support/harness.js";
import type { Via } from "../support/harness.js";

const transports: readonly Via[] = ["connect", "grpc"];

/** An HS256 token with exactly the given claims. */
async function signClaims(secret: string, claims: Record<string, string>, subject: string | undefined): Promise<string> {
  const jwt = new SignJWT(claims).setProtectedHeader({ alg: "HS256", typ: "JWT" }).setIssuedAt().setExpirationTime("1h");
  if (subject !== undefined) jwt.setSubject(subject);
  return jwt.sign(new TextEncoder().encode(secret));
}

describe.each(backends)("authentication on %s", (backend) => {
  const env = useService(backend);

  it.each(transports)("accepts a valid token over %s", async (via) => {
    const token = await mintToken(env.secret, { customerId: newCustomer(), agentId: randomUUID(), name: "Ann" });
    const { talks } = env.clients(token, via);
    expect((await talks.listTalks({})).result).toEqual([]);
  });

  it.each(transports)("rejects a call without a token over %s", async (via) => {
    await expectCode(env.clients(undefined, via).talks.listTalks({}), Code.Unauthenticated);
  });

  it.each(transports)("rejects a malformed token over %s", async (via) => {
    await expectCode(env.clients("not.a.jwt", via).talks.listTalks({}), Code.Unauthenticated);
    await expectCode(env.clients("", via).messages.getMessage({ id: randomUUID() }), Code.Unauthenticated);
  });

  it.each(transports)("rejects a token signed with another secret over %s", async (via) => {
    const token = await mintToken(randomBytes(32).toString("hex"), { customerId: newCustomer(), agentId: randomUUID() });
    await expectCode(env.clients(token, via).talks.createTalk({}), Code.Unauthenticated);
  });

  it.each(transports)("rejects an expired token over %s", async (via) => {
    const token = await mintToken(env.secret, { customerId: newCustomer(), agentId: randomUUID(), expiresInSeconds: -10 });
    await expectCode(env.clients(token, via).talks.listTalks({}), Code.Unauthenticated);
  });

  it("refuses a token it remembered as verified once the token's exp has passed", async () => {
    // The verifier remembers a verified token until its exp; the second call hits that memory.
    const minted = await Promise.all(
      transports.map(async (via) => {
        const token = await mintToken(env.secret, { customerId: newCustomer(), agentId: randomUUID(), name: "Brief", expiresInSeconds: 4 });
        return { via, token, clients: env.clients(token, via) };
      }),
    );
    for (const { clients } of minted) expect((await clients.talks.listTalks({})).result).toEqual([]);
    const exp = Math.max(...minted.map(({ token }) => expOf(token)));
    await sleep(Math.max(0, exp * 1000 + 300 - Date.now()));
    for (const { via, clients } of minted) {
      expect(Date.now(), "past the token's exp").toBeGreaterThan(exp * 1000);
      const error = await expectCode(clients.talks.listTalks({}), Code.Unauthenticated);
      expect(error.rawMessage, via).toMatch(/expired/);
    }
  }, 30_000);

  it.each(transports)("rejects a token without customer_id over %s", async (via) => {
    const token = await signClaims(env.secret, { name: "Ann" }, randomUUID());
    await expectCode(env.clients(token, via).talks.listTalks({}), Code.Unauthenticated);
  });

  it.each(transports)("rejects a token without a UUID subject over %s", async (via) => {
    const noSubject = await signClaims(env.secret, { customer_id: newCustomer() }, undefined);
    await expectCode(env.clients(noSubject, via).talks.listTalks({}), Code.Unauthenticated);
    const badSubject = await mintToken(env.secret, { customerId: newCustomer(), agentId: "agent-7" });
    await expectCode(env.clients(badSubject, via).talks.listTalks({}), Code.Unauthenticated);
  });

  it.each(transports)("rejects a token whose customer_id is not a UUID over %s", async (via) => {
    const token = await mintToken(env.secret, { customerId: "acme", agentId: randomUUID() });
    await expectCode(env.clients(token, via).agents.listAgents({}), Code.Unauthenticated);
  });
});

/** The `exp` claim (seconds) of a token this suite minted. */
function expOf(token: string): number {
  const payload: unknown = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8"));
  const exp = typeof payload === "object" && payload !== null && "exp" in payload ? payload.exp : undefined;
  if (typeof exp !== "number") throw new Error("the token has no exp");
  return exp;
}
