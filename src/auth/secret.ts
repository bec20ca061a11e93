import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * The embedded default's signing secret: made once and kept in the data dir, so tokens survive
 * restarts. Readable by the owner only.
 */
export function loadOrCreateSecret(dataDir: string): string {
  const path = join(dataDir, "jwt-secret");
  try {
    return readFileSync(path, "utf8").trim();
  } catch (error) {
    if (!(typeof error === "object" && error !== null && "code" in error && error.code === "ENOENT")) throw error;
  }
  mkdirSync(dataDir, { recursive: true });
  const secret = randomBytes(32).toString("base64url");
  writeFileSync(path, `${secret}\n`, { mode: 0o600, flag: "wx" });
  return secret;
}
