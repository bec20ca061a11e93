import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWK, type JWTPayload } from "jose";
import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { Unauthenticated } from "../../src/domain/model/errors.js";
import { createVerifier, type VerifierOptions } from "../../src/auth/verifier.js";

const secret = "s3cret-for-unit-tests-at-least-32-bytes";
const agent = "0190a3b4-5c6d-7e8f-9a0b-1c2d3e4f5a6b";
const customer = "0190a3b4-0000-7000-8000-000000000001";
const now = () => Math.floor(Date.now() / 1000);

const options = (more: Partial<VerifierOptions> = {}): VerifierOptions => ({
  secret,
  jwksUrl: undefined,
  issuer: undefined,
  audience: undefined,
  ...more,
});

/** An HS256 token with valid claims unless `claims` overrides them (undefined removes one). */
async function hs256(claims: Record<string, unknown> = {}, key: string = secret, alg = "HS256"): Promise<string> {
  const payload: JWTPayload = { sub: agent, customer_id: customer, exp: now() + 600, ...claims };
  for (const [name, value] of Object.entries(payload)) if (value === undefined) delete payload[name];
  return new SignJWT(payload).setProtectedHeader({ alg }).sign(new TextEncoder().encode(key));
}

async function refusal(verify: (token: string) => Promise<unknown>, token: string): Promise<string> {
  const error: unknown = await verify(token).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(Unauthenticated);
  return (error as Unauthenticated).message;
}

/** A throwaway test key, used nowhere else. */
const rsaPrivateKeyPem = `-----BEGIN PRIVATE KEY-----
MIIEvwIBADANBgkqhkiG9w0BAQEFAASCBKkwggSlAgEAAoIBAQCqVEhDCE+ISZqO
udLsnsqL7UQN9yW62vrx2Qz8Ll0Fiwi30bu0jjoUO+sJIqy/QQczHCK5vkP/qQVA
HlaMZuy1RWeIgIAefghhCCZkeYbcwxu0DUwVdM4FoBfehOFqWYYAC0tCh+bAJi8a
NWSTxHSYgBXQ2XSbynOgmatCX35XzNw8baC16ZPoiO55kESBOZKGKD3CCqhL886S
krBk8GrgbEWJVBCAhQyJF8xHIRQAH21WPc7ZjJqYm8/7LSpR6RGYiDv0NiU/VZfK
ozj7ILdNNU0VAHArvqiWgSADKKRfmkOVfshm4NCrWbpGkBvgLfSyRK93nyGvaifD
bKaytdhvAgMBAAECggEAKAA5JDzsaKZYfNJZHabBDJGBHQKAwtwweOGvcf31bJrV
Rk4kFegc7amQrgmNpjDAXxlpclOjpoPsLr2xN7HoPz34bY84B3EzyI3gblI4ANp1
RBinWJag16NcV66/PXmexZ3hY9OEtnWBNFd7slQ9yZ6zAORAxWGLPBk6phDFHBsn
CFzvlt7pfgz+9OHE1dteyyr5xbIVl5o4pphQxgYxNfantKQ+Nj5L2g5LzY58rRVh
pcuRtOJpJMEkxzG8hQ40YDFseTKPKF+3kTmk3ipzxOF/nMGFXZAy0KWlkvFhPxAg
mL9cj0r8E5np+PUTXvwpZNJA4e1I2eiWkKcSCi5tSQKBgQDezToUNlA4QV5lpUQI
o+8ZaLrZHKapjrNU9DX69+Ibm8Qy/N2GzQhrqwtKiSi+F5qkunUtqFUB9gwX/+VA
gdT7NreZz/d3Y6F7bwG8NIsOIZ7UXU4xwrTUo2aVH5PT9kRawoc2r2ztQlC30iOM
QSdvJdNgyMNqiRR0HhALrq1TiwKBgQDDtX5MexmLExcXHF+h+zGcyLPAjKSX3meb
yTnn9+SXBVHm4cInhkUFuYDkFFMD7k5ZFKcfS/6YGZmF+hMkKkjKYPyVY+pxduz6
9aqZzbtE80fBaqZIVr/N6hSzXThMNElS6X0tggjl6YJnr5qUT4suUy5Dpvzvd1jn
b/m+VxubLQKBgQDaFF9I8XDL35AaRg21t2CNqmlZoiWvybHW8cL0iDWVeH4uujvL
el1HpgBDUMXEay4/FxMjQaUTalakFyG6ZlqmGgTUVS+QeMDTJPC522RQzK++hiXH
pyGBEP+T73iu/FojzEy1RjiEc2i2xMVuv0duD8Q688fzO4H9tn9WMAAPyQKBgQC4
5I9EfAveuxNWbyTeKC1v3KENaRHatHAX2pzNTQH1tz3wLRq7Mnuk8+MUFytyjEIS
oJNe2vHVCmJjE6Xfxd7s64HVNQb5WQx773nUQmwIsPn6feJId0RPqjUSWyBjxgX7
wcDULIRxiRD9Ggak1R09j7Imke1l4s/oHn7IVw0qpQKBgQDUgfzZUeL+Z0xerSTD
lDGJnLzO9RxdHNOwgKPAQlFxDjRU+YEYPEv736OrGwi6WWgi8m/+UO7pYVajvsiQ
ZbIv4qPOMN6XiD6l4BDNVdiSvUTi0/+yMK9aaHhC+8MPvOXWTpNwJSJ7SQ3FuCMU
CYfej9Xw1vGirqS3BdNAmvIabw==
-----END PRIVATE KEY-----`;

const b64 = (value: unknown) => Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");

describe("createVerifier: HS256", () => {
  const verify = createVerifier(options());

  it("turns a valid token into the caller's identity", async () => {
    const exp = now() + 600;
    const token = await hs256({ sub: agent.toUpperCase(), customer_id: customer.toUpperCase(), name: "  Ann Agent ", role: "admin", exp });
    expect(await verify(token)).toEqual({ agentId: agent, customerId: customer, name: "Ann Agent", role: "admin", expiresAt: exp * 1000 });
  });

  it("defaults the role to agent and the name to none", async () => {
    expect(await verify(await hs256())).toEqual(expect.objectContaining({ role: "agent", name: undefined }));
    expect((await verify(await hs256({ name: "   " }))).name).toBeUndefined();
    expect((await verify(await hs256({ name: "" }))).name).toBeUndefined();
  });

  it("cuts a long name to 200 characters", async () => {
    expect((await verify(await hs256({ name: `${"n".repeat(250)}` }))).name).toBe("n".repeat(200));
  });

  it("refuses a token signed with another secret", async () => {
    expect(await refusal(verify, await hs256({}, "another-secret-of-thirty-two-bytes-long"))).toBe("the token is not valid");
  });

  it("refuses an expired token, and one not valid yet", async () => {
    expect(await refusal(verify, await hs256({ exp: now() - 1 }))).toBe("the token has expired");
    expect(await refusal(verify, await hs256({ nbf: now() + 60 }))).toBe("a token claim is not valid");
  });

  it("refuses a token without exp unless told to accept them, which never expire", async () => {
    expect(await refusal(verify, await hs256({ exp: undefined }))).toBe("the token has no exp claim");
    const strict = createVerifier(options({ allowTokensWithoutExp: false }));
    expect(await refusal(strict, await hs256({ exp: undefined }))).toBe("the token has no exp claim");
    const lenient = createVerifier(options({ allowTokensWithoutExp: true }));
    expect((await lenient(await hs256({ exp: undefined }))).expiresAt).toBe(Infinity);
    expect((await lenient(await hs256({ exp: now() + 5 }))).expiresAt).toBe((now() + 5) * 1000);
  });

  it("refuses a tampered payload", async () => {
    const [header, , signature] = (await hs256()).split(".");
    const forged = `${header}.${b64({ sub: agent, customer_id: customer, exp: now() + 600, role: "admin" })}.${signature}`;
    expect(await refusal(verify, forged)).toBe("the token is not valid");
  });

  it.each([
    ["sub", { sub: undefined }, '"sub" must be an agent UUID'],
    ["sub", { sub: "agent-1" }, '"sub" must be an agent UUID'],
    ["sub", { sub: [agent] }, '"sub" must be an agent UUID'],
    ["customer_id", { customer_id: [customer] }, '"customer_id" must be a customer UUID'],
    ["customer_id", { customer_id: undefined }, '"customer_id" must be a customer UUID'],
    ["customer_id", { customer_id: 42 }, '"customer_id" must be a customer UUID'],
    ["customer_id", { customer_id: `${customer}x` }, '"customer_id" must be a customer UUID'],
    ["name", { name: 7 }, '"name" must be a string'],
    ["name", { name: null }, '"name" must be a string'],
    ["name", { name: "a\u0000b" }, '"name" must not contain control characters'],
    ["name", { name: "line\nbreak" }, '"name" must not contain control characters'],
    ["name", { name: "del\u007f" }, '"name" must not contain control characters'],
    ["role", { role: "root" }, '"role" must be "agent" or "admin"'],
    ["role", { role: "Admin" }, '"role" must be "agent" or "admin"'],
  ])("refuses a bad %s claim", async (_, claims, message) => {
    expect(await refusal(verify, await hs256(claims))).toBe(`the token's ${message}`);
  });

  it("accepts a name with non-ASCII letters and role agent", async () => {
    expect(await verify(await hs256({ name: "Zoë 李", role: "agent" }))).toEqual(
      expect.objectContaining({ name: "Zoë 李", role: "agent" }),
    );
  });
});

describe("createVerifier: issuer and audience", () => {
  const verify = createVerifier(options({ issuer: "https://idp", audience: "talkhub" }));

  it("accepts the configured issuer and audience", async () => {
    expect((await verify(await hs256({ iss: "https://idp", aud: "talkhub" }))).agentId).toBe(agent);
  });

  it("refuses another or a missing issuer or audience", async () => {
    for (const claims of [
      { iss: "https://evil", aud: "talkhub" },
      { aud: "talkhub" },
      { iss: "https://idp", aud: "other" },
      { iss: "https://idp" },
    ]) {
      expect(await refusal(verify, await hs256(claims))).toBe("a token claim is not valid");
    }
  });

  it("checks neither when none is configured", async () => {
    expect((await createVerifier(options())(await hs256({ iss: "https://any", aud: "any" }))).agentId).toBe(agent);
  });

  it("checks only the one configured", async () => {
    const issuerOnly = createVerifier(options({ issuer: "https://idp" }));
    expect((await issuerOnly(await hs256({ iss: "https://idp", aud: "any" }))).agentId).toBe(agent);
    expect(await refusal(issuerOnly, await hs256({ iss: "https://evil" }))).toBe("a token claim is not valid");
    const audienceOnly = createVerifier(options({ audience: "talkhub" }));
    expect((await audienceOnly(await hs256({ iss: "https://any", aud: "talkhub" }))).agentId).toBe(agent);
    expect(await refusal(audienceOnly, await hs256({ aud: "other" }))).toBe("a token claim is not valid");
  });
});

describe("createVerifier: algorithms and keys", () => {
  const algs = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"] as const;
  const keys = new Map<string, { privateKey: CryptoKey | KeyObject; jwk: JWK }>();
  const sign = (alg: string, claims: JWTPayload = {}) => {
    const key = keys.get(alg);
    if (key === undefined) throw new Error(`no key for ${alg}`);
    return new SignJWT({ sub: agent, customer_id: customer, exp: now() + 600, ...claims }).setProtectedHeader({ alg }).sign(key.privateKey);
  };

  beforeAll(async () => {
    // One RSA key serves every RS and PS algorithm; each curve needs its own.
    // A Node KeyObject, unlike a WebCrypto key, is not bound to one algorithm. A fixed RSA key:
    // making one takes longer than the whole file's tests, and mutation testing reruns them.
    const rsa = { privateKey: createPrivateKey(rsaPrivateKeyPem) };
    const rsaJwk = await exportJWK(createPublicKey(rsa.privateKey));
    for (const alg of algs.filter((a) => /^(RS|PS)/.test(a))) keys.set(alg, { privateKey: rsa.privateKey, jwk: rsaJwk });
    for (const alg of ["ES256", "ES384", "ES512", "EdDSA"]) {
      const pair = await generateKeyPair(alg, { extractable: true });
      keys.set(alg, { privateKey: pair.privateKey, jwk: await exportJWK(pair.publicKey) });
    }
  });

  const jwks = () => ({ keys: [...new Set([...keys.values()].map((k) => k.jwk))] });

  it.each(algs)("accepts %s with a JWKS key", async (alg) => {
    const verify = createVerifier(options({ secret: undefined, jwks: jwks() }));
    expect((await verify(await sign(alg))).agentId).toBe(agent);
  });

  it("checks issuer and audience for JWKS tokens too", async () => {
    const verify = createVerifier(options({ secret: undefined, jwks: jwks(), issuer: "https://idp", audience: "talkhub" }));
    expect(await refusal(verify, await sign("ES256", { iss: "https://idp", aud: "other" }))).toBe("a token claim is not valid");
    expect((await verify(await sign("ES256", { iss: "https://idp", aud: "talkhub" }))).agentId).toBe(agent);
  });

  it("refuses an asymmetric token without a JWKS, and HS256 without a secret", async () => {
    expect(await refusal(createVerifier(options()), await sign("ES256"))).toBe("the token's algorithm is not accepted");
    const jwksOnly = createVerifier(options({ secret: undefined, jwks: jwks() }));
    expect(await refusal(jwksOnly, await hs256())).toBe("the token's algorithm is not accepted");
  });

  it("refuses an HS256 token keyed with a public key (algorithm confusion)", async () => {
    const publicJwk = keys.get("ES256")!.jwk;
    const both = createVerifier(options({ secret, jwks: { keys: [publicJwk] } }));
    expect(await refusal(both, await hs256({}, JSON.stringify(publicJwk)))).toBe("the token is not valid");
  });

  it("uses the inline JWKS before a JWKS URL, and the URL without it", async () => {
    const inline = createVerifier(options({ secret: undefined, jwks: jwks(), jwksUrl: "not a url" }));
    expect((await inline(await sign("ES256"))).agentId).toBe(agent);
    expect(() => createVerifier(options({ secret: undefined, jwksUrl: "not a url" }))).toThrow(/Invalid URL/);
  });

  it("refuses other HMAC algorithms even with the secret", async () => {
    const verify = createVerifier(options());
    expect(await refusal(verify, await hs256({}, secret, "HS384"))).toBe("the token's algorithm is not accepted");
    expect(await refusal(verify, await hs256({}, secret, "HS512"))).toBe("the token's algorithm is not accepted");
  });

  it("refuses alg none and headers it cannot read", async () => {
    const verify = createVerifier(options({ jwks: jwks() }));
    const body = b64({ sub: agent, customer_id: customer, exp: now() + 600 });
    for (const header of [{ alg: "none" }, { alg: "hs256" }, { alg: 256 }, { typ: "JWT" }, null, [], "HS256", "{not json"]) {
      expect(await refusal(verify, `${b64(header)}.${body}.`)).toBe("the token's algorithm is not accepted");
    }
    for (const token of ["", "abc", ".", "..", "%%%.x.y"])
      expect(await refusal(verify, token)).toBe("the token's algorithm is not accepted");
  });

  it("needs a secret or a JWKS", () => {
    expect(() => createVerifier(options({ secret: undefined }))).toThrow("a token verifier needs a secret or a JWKS");
  });
});
