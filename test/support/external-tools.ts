/**
 * Clients of other stacks that the interop suites run (the JDK, Python's grpcio): present, the
 * suite runs; missing, it is skipped with a loud warning and a NOT RUN line, except under
 * CI=true, where the file fails (.ci/run installs them on a fresh machine).
 */
import { spawnSync } from "node:child_process";
import { recordNotRun } from "./not-run-summary.js";

/** Whether `command args...` runs and exits 0 (a tool's presence check). */
export function runs(command: string, args: readonly string[]): boolean {
  const result = spawnSync(command, args, { stdio: "ignore", timeout: 60_000 });
  return result.status === 0;
}

/** Whether the suite needing `tool` runs: see the file's comment. */
export function toolPresent(suite: string, tool: string, present: boolean, install: string): boolean {
  if (present) return true;
  if (process.env["CI"] === "true") throw new Error(`${tool} not found (CI=true makes this fatal): ${install}`);
  console.warn(`!!! ${tool.toUpperCase()} NOT FOUND: ${suite} SKIPPED (${install}; CI=true makes this fail)`);
  recordNotRun(`${suite}: ${tool} not found (${install})`);
  return false;
}
