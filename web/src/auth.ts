/**
 * Sign-in: a pasted bearer token, kept in sessionStorage (this tab, until it closes), or in
 * localStorage only when the agent ticks "remember me": a token that outlives the tab is one
 * more that a shared computer or a stolen profile gives away. The console only reads the JWT
 * payload for display (the agent id is its "sub"); the service verifies the signature.
 */
const storageKey = "talkhub.token";

export interface Session {
  readonly token: string;
  readonly agentId: string;
  readonly customerId: string;
  readonly name: string;
  readonly role: string;
  readonly expiresAt: Date | undefined;
}

function base64UrlDecode(part: string): string {
  const base64 = part
    .replace(/-/g, "+")
    .replace(/_/g, "/")
    .padEnd(Math.ceil(part.length / 4) * 4, "=");
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

/** Reads a token's claims; throws an Error with a readable message when it is not a JWT. */
export function decodeToken(raw: string): Session {
  const token = raw.trim().replace(/^Bearer\s+/i, "");
  const parts = token.split(".");
  if (parts.length !== 3 || parts[1] === undefined) throw new Error("That is not a JWT (expected three dot-separated parts).");
  let claims: Record<string, unknown>;
  try {
    claims = JSON.parse(base64UrlDecode(parts[1])) as Record<string, unknown>;
  } catch {
    throw new Error("The token's payload is not readable JSON.");
  }
  const text = (key: string): string => (typeof claims[key] === "string" ? (claims[key] as string) : "");
  const agentId = text("sub");
  if (agentId === "") throw new Error("The token has no subject (sub): it names no agent.");
  const exp = typeof claims["exp"] === "number" ? new Date(claims["exp"] * 1000) : undefined;
  if (exp !== undefined && exp.getTime() < Date.now()) throw new Error(`The token expired on ${exp.toLocaleString()}.`);
  return { token, agentId, customerId: text("customer_id"), name: text("name"), role: text("role") || "agent", expiresAt: exp };
}

export function loadSession(): Session | undefined {
  const token = sessionStorage.getItem(storageKey) ?? localStorage.getItem(storageKey);
  if (token === null) return undefined;
  try {
    return decodeToken(token);
  } catch {
    clearSession();
    return undefined;
  }
}

/** Keeps the token for this tab, or across browser restarts when `remember` is set. */
export function saveSession(session: Session, remember: boolean): void {
  clearSession();
  (remember ? localStorage : sessionStorage).setItem(storageKey, session.token);
}

export function clearSession(): void {
  sessionStorage.removeItem(storageKey);
  localStorage.removeItem(storageKey);
}
