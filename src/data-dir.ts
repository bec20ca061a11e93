/**
 * The embedded default's data dir (TALKHUB_DATA_DIR): the database files, the signing secret
 * and the demo people. Everything in it is the owner's only: the secret mints any token, and
 * the database holds every tenant's messages.
 */
import { mkdirSync, writeFileSync } from "node:fs";

/**
 * Creates a directory (and its missing parents) readable by the owner only. A directory that
 * already exists keeps its mode: it may be one the operator chose and shares on purpose.
 */
export function makePrivateDir(path: string): void {
  mkdirSync(path, { recursive: true, mode: 0o700 });
}

/** Writes a file readable by the owner only; `exclusive` fails when it already exists. */
export function writePrivateFile(path: string, text: string, exclusive = false): void {
  writeFileSync(path, text, { mode: 0o600, flag: exclusive ? "wx" : "w" });
}
