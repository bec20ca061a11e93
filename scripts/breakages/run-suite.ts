/**
 * Runs one suite with vitest in a scratch copy, under CI=true (a missing server fails rather
 * than skips), bounded in time, and reads vitest's JSON report to tell a failed test from a
 * suite that did not run at all: only a failed test counts as the breakage being caught.
 */
import { spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { SuiteCheck } from "./breakage.js";

export type Verdict = "caught" | "missed" | "no tests ran" | "timeout";

export interface SuiteResult {
  readonly verdict: Verdict;
  readonly seconds: number;
  readonly passed: number;
  readonly failed: string[];
  /** Test files that failed without a test failing (import errors, hooks). */
  readonly fileErrors: string[];
}

interface JsonReport {
  numPassedTests?: number;
  testResults?: { name: string; status: string; message?: string; assertionResults?: { fullName: string; status: string }[] }[];
}

const defaultTimeoutMs = 10 * 60_000;

/** Process groups of the vitest runs in progress (their own groups: a Ctrl-C does not reach them). */
const running = new Set<number>();

/** Ends every vitest run in progress with everything it started (for the runner's own exit). */
export function killRunning(): void {
  for (const pid of running) killGroup(pid, "SIGKILL");
}

export async function runSuite(dir: string, suite: SuiteCheck, logPath: string): Promise<SuiteResult> {
  const reportPath = join(dir, `.breakage-report-${Date.now()}.json`);
  const args = [
    join(dir, "node_modules/vitest/vitest.mjs"),
    "run",
    suite.file,
    ...(suite.filter === undefined ? [] : ["-t", suite.filter]),
    "--reporter=default",
    "--reporter=json",
    `--outputFile.json=${reportPath}`,
  ];
  const log = createWriteStream(logPath);
  const startedAt = Date.now();
  // Its own process group, so that a run past its bound is ended with everything it started.
  const child = spawn(process.execPath, args, {
    cwd: dir,
    env: { ...process.env, CI: "true" },
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout.pipe(log, { end: false });
  child.stderr.pipe(log, { end: false });
  running.add(child.pid ?? 0);
  let timedOut = false;
  const bound = setTimeout(() => {
    timedOut = true;
    killGroup(child.pid, "SIGTERM");
    setTimeout(() => killGroup(child.pid, "SIGKILL"), 10_000).unref();
  }, suite.timeoutMs ?? defaultTimeoutMs);
  await new Promise<void>((resolve) => child.once("close", () => resolve()));
  clearTimeout(bound);
  running.delete(child.pid ?? 0);
  log.end();
  const seconds = Math.round((Date.now() - startedAt) / 1000);

  const report = await readFile(reportPath, "utf8").then(
    (text) => JSON.parse(text) as JsonReport,
    () => ({}) as JsonReport,
  );
  const failed: string[] = [];
  const fileErrors: string[] = [];
  for (const file of report.testResults ?? []) {
    const failures = (file.assertionResults ?? []).filter((a) => a.status === "failed").map((a) => a.fullName);
    failed.push(...failures);
    if (file.status === "failed" && failures.length === 0) fileErrors.push(`${file.name}: ${(file.message ?? "").split("\n")[0]}`);
  }
  const passed = report.numPassedTests ?? 0;
  const verdict: Verdict = timedOut
    ? "timeout"
    : failed.length > 0
      ? "caught"
      : passed > 0 && fileErrors.length === 0
        ? "missed"
        : "no tests ran";
  return { verdict, seconds, passed, failed, fileErrors };
}

function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}
