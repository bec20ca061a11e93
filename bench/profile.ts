/** Summarizes a V8 .cpuprofile (from node --cpu-prof): self time by function and by package/file. */
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";

/** The repository's root as it appears in a profile's URLs (a worktree is not /work/main). */
const root = fileURLToPath(new URL("..", import.meta.url));

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileEntry {
  readonly name: string;
  readonly where: string;
  readonly selfMs: number;
  readonly percent: number;
}

export interface ProfileSummary {
  readonly file: string;
  readonly totalMs: number;
  readonly idlePercent: number;
  readonly functions: ProfileEntry[];
  readonly groups: ProfileEntry[];
}

/** Where a frame's code lives: a package, a file of the project, Node's internals, or V8. */
function groupOf(url: string, name: string): string {
  if (url === "") return name.startsWith("(") ? name : "(native)";
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg?.[1] !== undefined) return pkg[1];
  if (url.startsWith("node:"))
    return `${url.split("/").slice(0, 2).join("/").replace(/\/.*$/, "")} (${url.replace(/^node:internal\//, "").split("/")[0]})`;
  const path = url.replace("file://", "");
  return path.startsWith(root) ? path.slice(root.length) : url;
}

/**
 * Self time by function and by group. `window` (microseconds of the monotonic clock, which
 * `process.hrtime` reads in every process of the machine) keeps only the samples inside it, e.g.
 * a measured load without the server's start-up.
 */
export async function summarizeProfile(file: string, top = 20, window?: { fromUs: number; toUs: number }): Promise<ProfileSummary> {
  const profile = JSON.parse(await readFile(file, "utf8")) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  let at = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    at += profile.timeDeltas[i] ?? 0;
    if (window !== undefined && (at < window.fromUs || at > window.toUs)) continue;
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  }
  const functions = new Map<string, { name: string; where: string; us: number }>();
  const groups = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const [id, us] of self) {
    const node = byId.get(id)!;
    const { functionName, url, lineNumber } = node.callFrame;
    total += us;
    if (functionName === "(idle)") idle += us;
    const name = functionName === "" ? "(anonymous)" : functionName;
    const where = url === "" ? "" : `${url.replace(`file://${root}`, "").replace(/^.*node_modules\//, "")}:${lineNumber + 1}`;
    const key = `${name}@${where}`;
    const f = functions.get(key) ?? { name, where, us: 0 };
    f.us += us;
    functions.set(key, f);
    const g = groupOf(url, functionName);
    groups.set(g, (groups.get(g) ?? 0) + us);
  }
  const busy = total - idle;
  const entries = (items: { name: string; where: string; us: number }[]) =>
    items
      .filter((e) => e.name !== "(idle)")
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((e) => ({ name: e.name, where: e.where, selfMs: Math.round(e.us / 1000), percent: Math.round((1000 * e.us) / busy) / 10 }));
  return {
    file,
    totalMs: Math.round(total / 1000),
    idlePercent: Math.round((1000 * idle) / total) / 10,
    functions: entries([...functions.values()]),
    groups: entries([...groups].map(([name, us]) => ({ name, where: "", us }))),
  };
}
