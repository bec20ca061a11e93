/**
 * Attacks on token verification: unsigned tokens, algorithm confusion, forged and tampered
 * signatures, time claims, hostile claims, a foreign customer, issuer and audience checks.
 * Every case over gRPC, Connect and REST; no part of the token may come back in the error.
 */
import { createHmac, createPublicKey, randomBytes, randomUUID } from "node:crypto";
import { createServer, type Server } from "node:http";
import { SignJWT, exportJWK, exportSPKI, generateKeyPair, type CryptoKey, type JWK } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConnectError } from "@connectrpc/connect";
import { backends, useService, type TestEnv, type Via } from "../support/harness.js";
import { connectCodeName, httpCall } from "../support/security-helpers.js";

const transports: readonly Via[] = ["grpc", "connect"];
const b64 = (value: unknown): string => Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");
const now = () => Math.floor(Date.now() / 1000);

/** A JWT with any header and payload, HMAC-signed with `key` (or unsigned when key is undefined). */
function handmade(header: Record<string, unknown>, payload: Record<string, unknown>, key?: string | Buffer, hash = "sha256"): string {
  const input = `${b64(header)}.${b64(payload)}`;
  if (key === undefined) return `${input}.`;
  return `${input}.${createHmac(hash, key).update(input).digest("base64url")}`;
}

function claims(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { sub: randomUUID(), customer_id: randomUUID(), name: "Mallory", iat: now(), exp: now() + 3600, ...extra };
}

/** A local JWKS endpoint on 127.0.0.1; counts its requests. */
class JwksServer {
  requests = 0;
  private server: Server | undefined;
  url = "";
  constructor(private readonly keys: () => JWK[]) {}
  async start(): Promise<void> {
    this.server = createServer((_req, res) => {
      this.requests += 1;
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ keys: this.keys() }));
    });
    await new Promise<void>((resolve) => this.server?.listen(0, "127.0.0.1", resolve));
    const address = this.server.address();
    if (address === null || typeof address === "string") throw new Error("no address");
    this.url = `http://127.0.0.1:${address.port}/.well-known/jwks.json`;
  }
  async stop(): Promise<void> {
    await new Promise<void>((resolve) => (this.server === undefined ? resolve() : this.server.close(() => resolve())));
  }
}

/** Calls ListTalks over a transport; the code and message of the answer. */
async function rpcOutcome(
  env: TestEnv,
  token: string | undefined,
  via: Via,
  authorization?: string,
): Promise<{ code: string; message: string }> {
  const client = env.clients(token, via, authorization);
  try {
    await client.talks.listTalks({});
    return { code: "ok", message: "" };
  } catch (error) {
    const e = ConnectError.from(error);
    return { code: connectCodeName(e.code), message: e.rawMessage };
  }
}

/** The parts of a token that must never be echoed. */
function secretsOf(token: string): string[] {
  const parts = token.split(".").filter((p) => p.length >= 8);
  const found = [token, ...parts];
  try {
    const payload = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8")) as Record<string, unknown>;
    for (const value of Object.values(payload)) if (typeof value === "string" && value.length >= 8) found.push(value);
  } catch {
    // not a JSON payload
  }
  return found.filter((s) => s !== "");
}

/** The token is refused everywhere (gRPC, Connect, REST header and ?token=) with `code`, unechoed. */
async function expectRefused(
  env: TestEnv,
  token: string,
  code: "unauthenticated" | "permission_denied" = "unauthenticated",
): Promise<void> {
  const secrets = secretsOf(token);
  const status = code === "unauthenticated" ? 401 : 403;
  for (const via of transports) {
    const outcome = await rpcOutcome(env, token, via);
    expect(outcome.code, `${via}: ${outcome.message}`).toBe(code);
    for (const s of secrets) expect(outcome.message, `${via} echoes the token`).not.toContain(s);
  }
  for (const reply of [
    await httpCall(env.url, "GET", "/v1.0/talks", { token }),
    await httpCall(env.url, "GET", `/v1.0/talks?token=${encodeURIComponent(token)}`),
    await httpCall(env.url, "POST", "/v1.0/talks", { token, body: "{}", headers: { "Content-Type": "application/json" } }),
  ]) {
    expect(reply.status, reply.text).toBe(status);
    expect(reply.json?.code).toBe(code);
    for (const s of secrets) expect(reply.text, "REST echoes the token").not.toContain(s);
  }
}

async function expectAccepted(env: TestEnv, token: string): Promise<void> {
  for (const via of transports) {
    const outcome = await rpcOutcome(env, token, via);
    expect(outcome.code, `${via}: ${outcome.message}`).toBe("ok");
  }
  const reply = await httpCall(env.url, "GET", "/v1.0/talks", { token });
  expect(reply.status, reply.text).toBe(200);
}

// One RSA key the service trusts (through its JWKS URL), one it does not.
let trusted: { privateKey: CryptoKey; jwk: JWK; pem: string };
let attacker: { privateKey: CryptoKey; jwk: JWK };
const jwks = new JwksServer(() => [trusted.jwk]);
const attackerJwks = new JwksServer(() => [attacker.jwk]);

beforeAll(async () => {
  const t = await generateKeyPair("RS256", { extractable: true });
  trusted = {
    privateKey: t.privateKey,
    jwk: { ...(await exportJWK(t.publicKey)), kid: "trusted-1", alg: "RS256", use: "sig" },
    pem: await exportSPKI(t.publicKey),
  };
  const a = await generateKeyPair("RS256", { extractable: true });
  attacker = { privateKey: a.privateKey, jwk: { ...(await exportJWK(a.publicKey)), kid: "trusted-1", alg: "RS256", use: "sig" } };
  await jwks.start();
  await attackerJwks.start();
});
afterAll(async () => {
  await jwks.stop();
  await attackerJwks.stop();
});

const rs256 = (key: CryptoKey, payload: Record<string, unknown>, header: Record<string, unknown> = {}) =>
  new SignJWT(payload).setProtectedHeader({ alg: "RS256", typ: "JWT", kid: "trusted-1", ...header }).sign(key);

describe.each(backends)("token attacks against a service with an HS256 secret and a JWKS on %s", (backend) => {
  // The JWKS server starts in the file's beforeAll; its URL is known only then.
  const env = useService(backend, () => ({ auth: { jwksUrl: jwks.url } }));

  it("accepts a valid HS256 token and a valid RS256 token from the JWKS", async () => {
    await expectAccepted(env, handmade({ alg: "HS256", typ: "JWT" }, claims(), env.secret));
    await expectAccepted(env, await rs256(trusted.privateKey, claims()));
    expect(jwks.requests).toBeGreaterThan(0);
  });

  it('refuses alg "none" (unsigned) in every spelling', async () => {
    for (const alg of ["none", "None", "NONE", "nOnE", ""]) {
      await expectRefused(env, handmade({ alg, typ: "JWT" }, claims()));
      // With a signature appended anyway.
      await expectRefused(env, handmade({ alg, typ: "JWT" }, claims(), env.secret));
    }
    await expectRefused(env, handmade({ typ: "JWT" }, claims(), env.secret));
  });

  it("refuses HS/RS confusion: the public key as an HMAC secret", async () => {
    const pemVariants = [
      trusted.pem,
      trusted.pem.trim(),
      Buffer.from(trusted.pem),
      JSON.stringify(trusted.jwk),
      createPublicKey(trusted.pem).export({ type: "pkcs1", format: "pem" }).toString(),
    ];
    for (const key of pemVariants) {
      await expectRefused(env, handmade({ alg: "HS256", typ: "JWT", kid: "trusted-1" }, claims(), key));
      // An HMAC signature under an asymmetric alg header.
      await expectRefused(env, handmade({ alg: "RS256", typ: "JWT", kid: "trusted-1" }, claims(), key));
    }
    const der = createPublicKey(trusted.pem).export({ type: "spki", format: "der" });
    await expectRefused(env, handmade({ alg: "HS256", typ: "JWT" }, claims(), der));
  });

  it("refuses RS256 tokens not signed by a JWKS key (embedded jwk, foreign jku, unknown key)", async () => {
    await expectRefused(env, await rs256(attacker.privateKey, claims()));
    await expectRefused(
      env,
      await rs256(attacker.privateKey, claims(), { jwk: { kty: attacker.jwk.kty, n: attacker.jwk.n, e: attacker.jwk.e } }),
    );
    const before = attackerJwks.requests;
    await expectRefused(env, await rs256(attacker.privateKey, claims(), { jku: attackerJwks.url }));
    await expectRefused(env, await rs256(attacker.privateKey, claims(), { x5u: attackerJwks.url }));
    expect(attackerJwks.requests, "the service fetched keys from a URL named in the token").toBe(before);
    // HS512/HS384 with the right secret: only HS256 is accepted.
    await expectRefused(env, handmade({ alg: "HS512", typ: "JWT" }, claims(), env.secret, "sha512"));
    await expectRefused(env, handmade({ alg: "HS384", typ: "JWT" }, claims(), env.secret, "sha384"));
  });

  it("refuses bad and tampered signatures", async () => {
    const good = handmade({ alg: "HS256", typ: "JWT" }, claims(), env.secret);
    const [h, p, s] = good.split(".") as [string, string, string];
    const flipped = `${s.slice(0, 10)}${s[10] === "A" ? "B" : "A"}${s.slice(11)}`;
    await expectRefused(env, `${h}.${p}.${flipped}`);
    await expectRefused(env, `${h}.${p}.`);
    await expectRefused(env, `${h}.${p}`);
    await expectRefused(env, handmade({ alg: "HS256", typ: "JWT" }, claims(), randomBytes(32).toString("hex")));
    // A payload raised to admin under the original signature.
    const raised = b64({ ...(JSON.parse(Buffer.from(p, "base64url").toString()) as object), role: "admin" });
    await expectRefused(env, `${h}.${raised}.${s}`);
    // The RS256 signature of one token on another's payload.
    const [rh, , rsig] = (await rs256(trusted.privateKey, claims())).split(".") as [string, string, string];
    await expectRefused(env, `${rh}.${b64(claims({ role: "admin" }))}.${rsig}`);
    for (const junk of ["x", "a.b.c", "....", `${h}.${p}.${s}.extra`, "Zm9v.YmFy.YmF6", `${b64("not json")}.${p}.${s}`]) {
      await expectRefused(env, junk);
    }
  });

  it("refuses expired and not-yet-valid tokens", async () => {
    await expectRefused(env, handmade({ alg: "HS256", typ: "JWT" }, claims({ exp: now() - 60 }), env.secret));
    await expectRefused(env, handmade({ alg: "HS256", typ: "JWT" }, claims({ nbf: now() + 3600 }), env.secret));
    await expectRefused(env, handmade({ alg: "HS256", typ: "JWT" }, claims({ exp: "tomorrow" }), env.secret));
    await expectRefused(env, await rs256(trusted.privateKey, claims({ exp: now() - 60 })));
    await expectRefused(env, await rs256(trusted.privateKey, claims({ nbf: now() + 3600 })));
  });

  it("refuses hostile claims: missing or non-UUID sub / customer_id, unknown role, odd types", async () => {
    const hs = (payload: Record<string, unknown>) => handmade({ alg: "HS256", typ: "JWT" }, payload, env.secret);
    const base = claims();
    const { sub: _sub, ...noSub } = base;
    const { customer_id: _customer, ...noCustomer } = base;
    for (const payload of [
      noSub,
      noCustomer,
      claims({ sub: "agent-7" }),
      claims({ sub: 12345 }),
      claims({ sub: [randomUUID()] }),
      claims({ sub: `${randomUUID()}' OR '1'='1` }),
      claims({ customer_id: "acme" }),
      claims({ customer_id: { id: randomUUID() } }),
      claims({ customer_id: "" }),
      claims({ role: "superuser" }),
      claims({ role: "ADMIN" }),
      claims({ role: ["admin"] }),
      claims({ name: { first: "x" } }),
    ]) {
      await expectRefused(env, hs(payload)).catch((e: unknown) => {
        throw new Error(`claims ${JSON.stringify(payload)}: ${String(e)}`);
      });
    }
    await expectRefused(env, await rs256(trusted.privateKey, claims({ role: "superuser" })));
  });

  it("refuses malformed Authorization headers and control characters in ?token=", async () => {
    const token = handmade({ alg: "HS256", typ: "JWT" }, claims(), env.secret);
    for (const authorization of [`Basic ${token}`, "Bearer", "Bearer ", `Bearer ${token} extra`, `Token ${token}`, token]) {
      for (const via of transports) {
        const outcome = await rpcOutcome(env, undefined, via, authorization);
        expect(outcome.code, `${via} "${authorization.slice(0, 12)}": ${outcome.message}`).toBe("unauthenticated");
        expect(outcome.message).not.toContain(token.split(".")[2]);
      }
    }
    for (const bad of ["%00", "%0d%0aX-Injected:%201", "a%0ab", `${encodeURIComponent(token)}%00`, "%7f"]) {
      for (const [method, path] of [
        ["GET", `/v1.0/talks?token=${bad}`],
        ["POST", `/talk.v1.TalkService/ListTalks?token=${bad}`],
      ] as const) {
        const reply = await httpCall(env.url, method, path, {
          body: method === "POST" ? "{}" : undefined,
          headers: { "Content-Type": "application/json" },
        });
        expect(reply.status, `${method} ${path}: ${reply.text}`).toBe(401);
        expect(reply.json?.code).toBe("unauthenticated");
        expect(reply.text).not.toContain(
          decodeURIComponent(bad)
            .replace(/[\r\n\0]/g, "")
            .slice(0, 20) || "\u0000never",
        );
        expect(reply.headers.get("x-injected")).toBeNull();
      }
    }
  });

  it("refuses an agent id presented with another customer (PERMISSION_DENIED)", async () => {
    const agentId = randomUUID();
    const customerX = randomUUID();
    await expectAccepted(env, handmade({ alg: "HS256", typ: "JWT" }, claims({ sub: agentId, customer_id: customerX }), env.secret));
    const foreign = handmade({ alg: "HS256", typ: "JWT" }, claims({ sub: agentId, customer_id: randomUUID() }), env.secret);
    await expectRefused(env, foreign, "permission_denied");
    // Upper-case id: the same agent.
    const upper = handmade({ alg: "HS256", typ: "JWT" }, claims({ sub: agentId.toUpperCase(), customer_id: randomUUID() }), env.secret);
    await expectRefused(env, upper, "permission_denied");
    // Through the JWKS too.
    await expectRefused(env, await rs256(trusted.privateKey, claims({ sub: agentId, customer_id: randomUUID() })), "permission_denied");
    // The owner is unaffected.
    await expectAccepted(env, handmade({ alg: "HS256", typ: "JWT" }, claims({ sub: agentId, customer_id: customerX }), env.secret));
  });
});

describe.each(backends)("issuer and audience checks on %s", (backend) => {
  const issuer = "https://issuer.talkhub.test/";
  const audience = "talkhub-api";
  const env = useService(backend, { auth: { issuer, audience } });
  const hs = (extra: Record<string, unknown>) => handmade({ alg: "HS256", typ: "JWT" }, claims(extra), env.secret);

  it("accepts the right iss and aud (also aud as a list)", async () => {
    await expectAccepted(env, hs({ iss: issuer, aud: audience }));
    await expectAccepted(env, hs({ iss: issuer, aud: ["other", audience] }));
  });

  it("refuses a missing or wrong iss or aud", async () => {
    for (const extra of [
      {},
      { iss: issuer },
      { aud: audience },
      { iss: "https://evil.test/", aud: audience },
      { iss: issuer.slice(0, -1), aud: audience },
      { iss: issuer, aud: "other" },
      { iss: issuer, aud: [] },
      { iss: issuer, aud: `${audience} ` },
      { iss: [issuer], aud: audience },
    ]) {
      await expectRefused(env, hs(extra));
    }
  });
});

describe.each(backends)("issuer and audience checks on JWKS tokens on %s", (backend) => {
  const issuer = "https://idp.talkhub.test";
  const audience = "talkhub";
  const env = useService(backend, () => ({ auth: { jwksUrl: jwks.url, issuer, audience } }));

  it("accepts RS256 with the right iss and aud, refuses wrong ones", async () => {
    await expectAccepted(env, await rs256(trusted.privateKey, claims({ iss: issuer, aud: audience })));
    await expectRefused(env, await rs256(trusted.privateKey, claims({ aud: audience })));
    await expectRefused(env, await rs256(trusted.privateKey, claims({ iss: issuer })));
    await expectRefused(env, await rs256(trusted.privateKey, claims({ iss: "https://evil.test", aud: audience })));
    await expectRefused(env, await rs256(attacker.privateKey, claims({ iss: issuer, aud: audience })));
  });
});
