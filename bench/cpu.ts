/**
 * CPU time per operation, from /proc/<pid>/stat (utime + stime) of each process that works on a
 * step: the server under test, the Postgres backends of the bench database, nats-server, the
 * bench process (load generators, raw baselines) and the watcher processes. Sampled right before
 * and after a step and divided by the operations the step completed.
 */
import { execFileSync } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { round } from "./stats.js";

/** Clock ticks per second of utime/stime (getconf CLK_TCK; 100 on Linux almost everywhere). */
export const ticksPerSecond = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime + stime of a process, in ms; undefined once it is gone. */
export async function cpuMs(pid: number): Promise<number | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may hold spaces) start at field 3 (state).
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(rest[11]) + Number(rest[12])) * 1000) / ticksPerSecond;
  } catch {
    return undefined;
  }
}

/** PIDs of processes whose command name is `comm` (e.g. nats-server). */
export async function pidsByName(comm: string): Promise<number[]> {
  const out: number[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const name = await readFile(`/proc/${entry}/comm`, "utf8").catch(() => "");
    if (name.trim() === comm) out.push(Number(entry));
  }
  return out;
}

/** A role whose processes are summed (their PIDs are listed at each sample: backends come and go). */
export interface CpuRole {
  readonly name: string;
  pids(): Promise<readonly number[]>;
}

export interface CpuStep {
  readonly step: string;
  /** What the operations are (sends, deliveries...). */
  readonly unit: string;
  readonly operations: number;
  readonly wallMs: number;
  /** CPU ms of each role over the step. */
  readonly cpuMs: Record<string, number>;
  /** CPU ms per operation of each role. */
  readonly perOperationMs: Record<string, number>;
}

type Snapshot = { readonly at: number; readonly byRole: Map<string, Map<number, number>> };

export class CpuMeter {
  readonly steps: CpuStep[] = [];

  constructor(readonly roles: readonly CpuRole[]) {}

  private async snapshot(): Promise<Snapshot> {
    const byRole = new Map<string, Map<number, number>>();
    for (const role of this.roles) {
      const pids = await role.pids().catch(() => []);
      const times = new Map<number, number>();
      for (const pid of pids) {
        const ms = await cpuMs(pid);
        if (ms !== undefined) times.set(pid, ms);
      }
      byRole.set(role.name, times);
    }
    return { at: performance.now(), byRole };
  }

  /** Runs `work` between two samples and records its CPU per operation (what `work` returns). */
  async measure<T>(step: string, unit: string, work: () => Promise<T>, operations: (result: T) => number): Promise<T> {
    const before = await this.snapshot();
    const result = await work();
    const after = await this.snapshot();
    const ops = operations(result);
    const cpu: Record<string, number> = {};
    const per: Record<string, number> = {};
    for (const role of this.roles) {
      const start = before.byRole.get(role.name) ?? new Map<number, number>();
      let total = 0;
      // A process that appeared during the step counts from zero; one that left is not seen.
      for (const [pid, ms] of after.byRole.get(role.name) ?? []) total += ms - (start.get(pid) ?? 0);
      cpu[role.name] = round(total, 0);
      per[role.name] = ops > 0 ? round(total / ops, 4) : NaN;
    }
    this.steps.push({ step, unit, operations: ops, wallMs: round(after.at - before.at, 0), cpuMs: cpu, perOperationMs: per });
    return result;
  }
}
