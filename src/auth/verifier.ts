import { createSecretKey } from "node:crypto";
import { createLocalJWKSet, createRemoteJWKSet, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from "jose";
import { Unauthenticated } from "../domain/model/errors.js";
import { isUuid, type AgentId, type CustomerId } from "../domain/model/ids.js";
import type { Identity } from "../domain/model/identity.js";

/** Turns a bearer token into the caller's identity, or throws Unauthenticated. */
export type TokenVerifier = (token: string) => Promise<Identity>;

export interface VerifierOptions {
  /** HS256 secret. */
  readonly secret: string | undefined;
  /** A JWKS URL for asymmetric keys. */
  readonly jwksUrl: string | undefined;
  /** A JWKS document given inline (tests). */
  readonly jwks?: Parameters<typeof createLocalJWKSet>[0];
  readonly issuer: string | undefined;
  readonly audience: string | undefined;
  /** Accept tokens without an `exp` claim (they never expire); false by default. */
  readonly allowTokensWithoutExp?: boolean | undefined;
}

const asymmetric = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"];

/**
 * Builds the verifier. The algorithm decides the key: HS256 only with the shared secret and the
 * asymmetric ones only with JWKS keys, so a token cannot switch one for the other; "none" is
 * never accepted.
 */
export function createVerifier(options: VerifierOptions): TokenVerifier {
  // A KeyObject made once: importing the raw secret on every call costs more than verifying.
  const secret = options.secret === undefined ? undefined : createSecretKey(Buffer.from(options.secret));
  const jwks: JWTVerifyGetKey | undefined =
    options.jwks !== undefined
      ? createLocalJWKSet(options.jwks)
      : options.jwksUrl !== undefined
        ? createRemoteJWKSet(new URL(options.jwksUrl))
        : undefined;
  if (secret === undefined && jwks === undefined) throw new Error("a token verifier needs a secret or a JWKS");
  const claimChecks = {
    ...(options.issuer === undefined ? {} : { issuer: options.issuer }),
    ...(options.audience === undefined ? {} : { audience: options.audience }),
  };

  const verify = async (token: string): Promise<Identity> => {
    let payload: JWTPayload;
    try {
      const alg = headerAlg(token);
      if (alg === "HS256" && secret !== undefined) {
        ({ payload } = await jwtVerify(token, secret, { ...claimChecks, algorithms: ["HS256"] }));
      } else if (alg !== undefined && asymmetric.includes(alg) && jwks !== undefined) {
        ({ payload } = await jwtVerify(token, jwks, { ...claimChecks, algorithms: asymmetric }));
      } else {
        throw new Unauthenticated("the token's algorithm is not accepted");
      }
    } catch (error) {
      // Which check failed is enough; nothing of the token itself goes back or into logs.
      if (error instanceof Unauthenticated) throw error;
      const code = typeof error === "object" && error !== null && "code" in error ? String(error.code) : "";
      throw new Unauthenticated(
        code === "ERR_JWT_EXPIRED"
          ? "the token has expired"
          : code === "ERR_JWT_CLAIM_VALIDATION_FAILED"
            ? "a token claim is not valid"
            : "the token is not valid",
        // The library's check (never the token's content), logged at debug level only.
        { cause: error },
      );
    }
    // A token that never expires cannot be taken back short of changing the key.
    if (claim(payload, "exp") === undefined && options.allowTokensWithoutExp !== true)
      throw new Unauthenticated("the token has no exp claim");
    return identityOf(payload);
  };
  return remembering(verify);
}

/**
 * Remembers verified tokens, so that a caller's token is checked once per process rather than
 * on every call (the signature check runs on the crypto thread pool and dominated the cost of a
 * call). A remembered token still expires at its `exp`; failures are never remembered.
 * Exported for its unit test.
 */
export function remembering(verify: (token: string) => Promise<Identity>, max = 10_000): TokenVerifier {
  const known = new Map<string, Identity>();
  return async (token) => {
    const hit = known.get(token);
    if (hit !== undefined && hit.expiresAt > Date.now()) return hit;
    if (hit !== undefined) known.delete(token);
    const verified = await verify(token);
    if (known.size >= max) known.delete(known.keys().next().value ?? "");
    known.set(token, verified);
    return verified;
  };
}

function headerAlg(token: string): string | undefined {
  const [header] = token.split(".");
  if (header === undefined) return undefined;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(header, "base64url").toString("utf8"));
    if (typeof parsed !== "object" || parsed === null || !Object.hasOwn(parsed, "alg")) return undefined;
    const { alg } = parsed as { alg: unknown };
    return typeof alg === "string" ? alg : undefined;
  } catch {
    return undefined;
  }
}

/** A claim the token itself carries: never one inherited from a prototype. */
function claim(payload: JWTPayload, name: string): unknown {
  return Object.hasOwn(payload, name) ? payload[name] : undefined;
}

function identityOf(payload: JWTPayload): Identity {
  const sub = claim(payload, "sub");
  const customerId = claim(payload, "customer_id");
  const name = claim(payload, "name");
  const role = claim(payload, "role") ?? "agent";
  const exp = claim(payload, "exp");
  if (typeof sub !== "string" || !isUuid(sub)) throw new Unauthenticated('the token\'s "sub" must be an agent UUID');
  if (typeof customerId !== "string" || !isUuid(customerId)) {
    throw new Unauthenticated('the token\'s "customer_id" must be a customer UUID');
  }
  if (name !== undefined && typeof name !== "string") throw new Unauthenticated('the token\'s "name" must be a string');
  // The name is written to the directory and into system messages: text columns refuse NUL.
  if (typeof name === "string" && /\p{Cc}/u.test(name))
    throw new Unauthenticated('the token\'s "name" must not contain control characters');
  if (role !== "agent" && role !== "admin") throw new Unauthenticated('the token\'s "role" must be "agent" or "admin"');
  return {
    agentId: sub.toLowerCase() as AgentId,
    customerId: customerId.toLowerCase() as CustomerId,
    name: name === undefined || name.trim() === "" ? undefined : name.trim().slice(0, 200),
    role,
    expiresAt: typeof exp === "number" ? exp * 1000 : Infinity,
  };
}
