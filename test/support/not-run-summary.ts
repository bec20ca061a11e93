/**
 * Vitest global setup: collects the suites that test/reachability.ts skipped because a server
 * did not answer (each test process appends a line to one file) and prints them after the run,
 * so a missing Postgres or NATS is visible in the last lines of the output, not only in a
 * warning scrolled away in the middle.
 */
import { randomBytes } from "node:crypto";
import { appendFileSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** The environment variable naming the file of skipped suites; the worker processes inherit it. */
export const notRunFileVariable = "TALKHUB_NOT_RUN_FILE";

/** Records a suite that did not run; a no-op outside a run with this global setup. */
export function recordNotRun(line: string): void {
  const file = process.env[notRunFileVariable];
  if (file === undefined || file === "") return;
  appendFileSync(file, `${line.replace(/\s+/g, " ")}\n`);
}

export default function setup(): () => void {
  const file = join(tmpdir(), `talkhub-not-run-${randomBytes(6).toString("hex")}.txt`);
  process.env[notRunFileVariable] = file;
  return () => {
    let text = "";
    try {
      text = readFileSync(file, "utf8");
    } catch {
      // No suite was skipped: the file was never written.
    }
    rmSync(file, { force: true });
    const lines = [...new Set(text.split("\n").filter((l) => l !== ""))];
    for (const line of lines) console.warn(`NOT RUN: ${line}`);
  };
}
