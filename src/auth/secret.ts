import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { makePrivateDir, writePrivateFile } from "../data-dir.js";

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
  makePrivateDir(dataDir);
  const secret = randomBytes(32).toString("base64url");
  writePrivateFile(path, `${secret}\n`, true);
  return secret;
}
