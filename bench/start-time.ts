/**
 * Start time of the compiled service on the embedded default: `node dist/main.js` spawned on a
 * new data dir (cold: the database is created) and again on the same dir (warm), timed from the
 * spawn until /readyz answers 200, with the child's CPU time at that moment (wall time on a
 * shared machine includes waiting for the cores; CPU time does not). dist/ is built first when
 * it is stale (scripts/build.mjs), outside the measurement.
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cpuMs } from "./cpu.js";
import { repoRoot } from "./server.js";
import { median, nowAbs, round, sleep } from "./stats.js";
import type { Verdict } from "./targets.js";

export interface StartTimeOptions {
  /** Cold starts, each followed by one warm start on the same data dir. */
  readonly runs: number;
  /** Give up on one start after this long. */
  readonly timeoutMs: number;
}

export interface StartSample {
  readonly kind: "cold" | "warm";
  readonly readyMs: number;
  /** utime + stime of the child when /readyz first answered. */
  readonly cpuMs: number;
}

export interface StartTimeResult {
  readonly command: string;
  readonly samples: StartSample[];
  readonly error?: string;
}

/** Until this limit, a start counts as quick (bench/targets.ts). */
export const startTargetMs = 3_000;

const command = ["dist/main.js"];

async function readyz(port: number): Promise<boolean> {
  try {
    return (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200;
  } catch {
    return false;
  }
}

/** One start: spawn, wait for the port it prints and /readyz 200, read its CPU, stop it. */
async function startOnce(dataDir: string, kind: StartSample["kind"], timeoutMs: number): Promise<StartSample> {
  const started = nowAbs();
  const child = spawn(process.execPath, command, {
    cwd: repoRoot,
    env: { ...process.env, TALKHUB_DATA_DIR: dataDir, TALKHUB_PORT: "0", TALKHUB_OPERATOR_PORT: "off", TALKHUB_LOG_LEVEL: "warn" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr.on("data", (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode} before /readyz: ${output.slice(-500)}`);
      if (nowAbs() - started > timeoutMs) throw new Error(`not ready within ${timeoutMs} ms`);
      const port = /listening on :(\d+)/.exec(output)?.[1];
      if (port !== undefined && (await readyz(Number(port)))) {
        const readyMs = nowAbs() - started;
        const cpu = (await cpuMs(child.pid ?? -1)) ?? NaN;
        return { kind, readyMs: round(readyMs, 0), cpuMs: round(cpu, 0) };
      }
      await sleep(10);
    }
  } finally {
    child.kill("SIGTERM");
    await exited;
  }
}

export async function runStartTime(options: StartTimeOptions, log: (line: string) => void): Promise<StartTimeResult> {
  const samples: StartSample[] = [];
  const result = { command: `node ${command.join(" ")}`, samples };
  try {
    execFileSync(process.execPath, ["scripts/build.mjs", "--if-stale"], { cwd: repoRoot, stdio: "inherit" });
    for (let i = 0; i < options.runs; i++) {
      const dir = mkdtempSync(join(tmpdir(), "talkhub-start-"));
      try {
        for (const kind of ["cold", "warm"] as const) {
          const sample = await startOnce(dir, kind, options.timeoutMs);
          samples.push(sample);
          log(`  start ${kind}: ready in ${sample.readyMs} ms, ${sample.cpuMs} ms CPU`);
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
    return result;
  } catch (error) {
    return { ...result, error: error instanceof Error ? error.message : String(error) };
  }
}

/** Medians of one kind of start, or undefined when none completed. */
export function startMedians(
  result: StartTimeResult | undefined,
  kind: StartSample["kind"],
): { readyMs: number; cpuMs: number; runs: number } | undefined {
  const of = result?.samples.filter((s) => s.kind === kind) ?? [];
  if (of.length === 0) return undefined;
  return { readyMs: median(of.map((s) => s.readyMs)), cpuMs: median(of.map((s) => s.cpuMs)), runs: of.length };
}

/** The report's section: every start and the medians. */
export function startTimeLines(result: StartTimeResult): string[] {
  const lines = [
    `### Start time (\`${result.command}\`, embedded default, from spawn to /readyz 200; cold = new data dir, warm = the same dir again)`,
    "",
    "| start | ready ms | CPU ms |",
    "|---|---|---|",
    ...result.samples.map((s) => `| ${s.kind} | ${s.readyMs} | ${s.cpuMs} |`),
  ];
  for (const kind of ["cold", "warm"] as const) {
    const m = startMedians(result, kind);
    if (m !== undefined) lines.push(`| **${kind}, median of ${m.runs}** | **${m.readyMs}** | **${m.cpuMs}** |`);
  }
  if (result.error !== undefined) lines.push("", `Did not complete: ${result.error}`);
  lines.push("");
  return lines;
}

/** Cold and warm start each: the median time to /readyz under `startTargetMs`, every start completed. */
export function startVerdicts(result: StartTimeResult | undefined, runs: number, backend: string): Verdict[] {
  return (["cold", "warm"] as const).map((kind) => {
    const m = startMedians(result, kind);
    const problems: string[] = [];
    if (result?.error !== undefined) problems.push(`did not complete: ${result.error}`);
    if ((m?.runs ?? 0) < runs) problems.push(`${m?.runs ?? 0} of ${runs} starts`);
    if (m !== undefined && !(m.readyMs < startTargetMs)) problems.push(`+${m.readyMs - startTargetMs} ms`);
    return {
      backend,
      what: `${kind} start of \`${result?.command ?? "node dist/main.js"}\` to /readyz (${kind === "cold" ? "new data dir" : "existing data dir"}, median of ${runs})`,
      target: `< ${startTargetMs} ms`,
      measured: m === undefined ? "did not complete" : `${m.readyMs} ms (${m.cpuMs} ms CPU)`,
      met: problems.length === 0,
      miss: problems.join("; "),
    };
  });
}
