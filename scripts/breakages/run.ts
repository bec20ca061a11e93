/**
 * `npm run test:breakages [-- name...] [--list] [--apply-only] [--keep] [--baseline]`
 *
 * For each breakage in cases/ (all, or the ones named): a scratch copy of the repository, the
 * breakage applied to it (a breakage that no longer applies is an error: code that moved must
 * move its breakage too), then each of its suites run there with vitest under CI=true, each of
 * which must fail. Prints breakage | suite | caught | seconds and exits non-zero if any
 * breakage does not apply or any suite passes with it applied.
 *
 * --baseline runs the same suites in an unbroken scratch copy instead, where they must pass:
 * it shows that a failure above comes from the breakage, not from the machine.
 * --apply-only applies each breakage to a scratch copy and runs nothing (a quick check that
 * every breakage still applies after code moved).
 * --keep leaves the scratch copies in place; logs are in test-artifacts/breakages/.
 */
import { rmSync } from "node:fs";
import { mkdir, readdir } from "node:fs/promises";
import { basename, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Breakage } from "./breakage.js";
import { killRunning, runSuite, type SuiteResult } from "./run-suite.js";
import { applyEdits, makeScratch, removeScratch } from "./scratch.js";

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
const casesDir = fileURLToPath(new URL("./cases", import.meta.url));
const logDir = join(repoRoot, "test-artifacts", "breakages");

/** Scratch copies in use, removed also when the runner is interrupted. */
const scratchDirs = new Set<string>();

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    killRunning();
    for (const dir of scratchDirs) rmSync(dir, { recursive: true, force: true });
    process.exit(130);
  });
}

interface Row {
  readonly breakage: string;
  readonly suite: string;
  readonly outcome: string;
  readonly ok: boolean;
  readonly seconds: number | undefined;
}

async function loadCases(): Promise<Map<string, Breakage>> {
  const cases = new Map<string, Breakage>();
  for (const file of (await readdir(casesDir)).filter((f) => f.endsWith(".ts")).sort()) {
    const module = (await import(pathToFileURL(join(casesDir, file)).href)) as { default: Breakage };
    cases.set(basename(file, ".ts"), module.default);
  }
  return cases;
}

function suiteLabel(file: string, filter: string | undefined): string {
  const name = basename(file, ".test.ts");
  return filter === undefined ? name : `${name} -t "${filter}"`;
}

function outcomeOf(result: SuiteResult, baseline: boolean): { outcome: string; ok: boolean } {
  if (baseline) {
    const ok = result.verdict === "missed";
    return { outcome: ok ? `passes (${result.passed})` : `${result.verdict === "caught" ? "FAILS" : result.verdict.toUpperCase()}`, ok };
  }
  switch (result.verdict) {
    case "caught":
      return { outcome: `yes (${result.failed.length} failed)`, ok: true };
    case "missed":
      return { outcome: `NO (${result.passed} passed)`, ok: false };
    case "timeout":
      return { outcome: "NO (timed out)", ok: false };
    default:
      return { outcome: `NO (no test ran${result.fileErrors.length > 0 ? `: ${result.fileErrors[0]?.slice(0, 120)}` : ""})`, ok: false };
  }
}

interface Options {
  readonly keep: boolean;
  readonly baseline: boolean;
  readonly applyOnly: boolean;
}

async function runBreakage(name: string, b: Breakage, options: Options): Promise<Row[]> {
  const rows: Row[] = [];
  const dir = await makeScratch(repoRoot, name);
  scratchDirs.add(dir);
  try {
    if (!options.baseline) {
      try {
        await applyEdits(dir, b.edits);
      } catch (error) {
        return [
          {
            breakage: name,
            suite: "-",
            outcome: `DOES NOT APPLY: ${error instanceof Error ? error.message : String(error)}`,
            ok: false,
            seconds: undefined,
          },
        ];
      }
    }
    if (options.applyOnly) return [{ breakage: name, suite: "-", outcome: "applies", ok: true, seconds: undefined }];
    for (const suite of b.suites) {
      const label = suiteLabel(suite.file, suite.filter);
      const logPath = join(logDir, `${name}${options.baseline ? ".baseline" : ""}.${basename(suite.file, ".test.ts")}.log`);
      console.log(`-- ${name}: ${label} (log: ${logPath})`);
      const result = await runSuite(dir, suite, logPath);
      const { outcome, ok } = outcomeOf(result, options.baseline);
      for (const failed of result.failed.slice(0, 5)) console.log(`   failed: ${failed}`);
      for (const error of result.fileErrors.slice(0, 3)) console.log(`   file error: ${error}`);
      console.log(`   ${outcome} in ${result.seconds} s`);
      rows.push({ breakage: name, suite: label, outcome, ok, seconds: result.seconds });
    }
  } finally {
    if (options.keep) console.log(`   scratch copy kept: ${dir}`);
    else await removeScratch(dir);
    scratchDirs.delete(dir);
  }
  return rows;
}

function printTable(rows: readonly Row[], mode: string): void {
  console.log(`\n| breakage | suite | ${mode} | seconds |`);
  console.log("|---|---|---|---|");
  for (const r of rows) console.log(`| ${r.breakage} | ${r.suite} | ${r.outcome} | ${r.seconds ?? "-"} |`);
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const flags = new Set(args.filter((a) => a.startsWith("--")));
  const names = args.filter((a) => !a.startsWith("--"));
  for (const flag of flags)
    if (!["--list", "--keep", "--baseline", "--apply-only"].includes(flag)) throw new Error(`unknown option ${flag}`);
  const cases = await loadCases();
  if (flags.has("--list")) {
    for (const [name, b] of cases)
      console.log(
        `${name}\n  behaviour: ${b.behaviour}\n  breakage:  ${b.breakage}\n  suites:    ${b.suites.map((s) => suiteLabel(s.file, s.filter)).join(", ")}`,
      );
    return 0;
  }
  const unknown = names.filter((n) => !cases.has(n));
  if (unknown.length > 0) throw new Error(`no breakage named ${unknown.join(", ")}; --list shows them`);
  await mkdir(logDir, { recursive: true });
  const options: Options = { keep: flags.has("--keep"), baseline: flags.has("--baseline"), applyOnly: flags.has("--apply-only") };
  const rows: Row[] = [];
  for (const name of names.length > 0 ? names : [...cases.keys()]) {
    const b = cases.get(name);
    if (b !== undefined) rows.push(...(await runBreakage(name, b, options)));
  }
  const mode = options.applyOnly ? "applies" : options.baseline ? "passes unbroken" : "caught";
  printTable(rows, mode);
  const bad = rows.filter((r) => !r.ok);
  if (bad.length > 0) console.log(`\n${bad.length} of ${rows.length} rows failed (column "${mode}")`);
  return bad.length > 0 ? 1 : 0;
}

process.exitCode = await main();
