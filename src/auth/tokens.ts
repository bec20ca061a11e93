import { SignJWT } from "jose";

/** What a minted token says about its bearer. */
export interface TokenClaims {
  readonly customerId: string;
  readonly agentId: string;
  readonly name?: string | undefined;
  readonly role?: "agent" | "admin" | undefined;
  /** Lifetime in seconds; 30 days by default. */
  readonly expiresInSeconds?: number | undefined;
}

/** Mints an HS256 token that this service accepts when configured with the same secret. */
export async function mintToken(secret: string, claims: TokenClaims): Promise<string> {
  const body: Record<string, string> = { customer_id: claims.customerId };
  if (claims.name !== undefined) body["name"] = claims.name;
  if (claims.role !== undefined) body["role"] = claims.role;
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT(body)
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setSubject(claims.agentId)
    .setIssuedAt(now)
    .setExpirationTime(now + (claims.expiresInSeconds ?? 30 * 24 * 3600))
    .sign(new TextEncoder().encode(secret));
}
