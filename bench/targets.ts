/**
 * The verdicts of a run: every point the run was configured to measure (from its settings, not
 * from what came back), each met or missed. A point that did not complete, lost or duplicated a
 * delivery, had a subscription refused or a send fail, or (at a fixed rate) achieved less than
 * `rateTolerance` of its rate, is missed; so is a named target (ratio, latency, memory) it does
 * not reach.
 */
import { rateTolerance, type FanoutPoint } from "./fanout.js";
import { historyCases } from "./history.js";
import { outsideMedians } from "./outside.js";
import { changes } from "./round-trips.js";
import type { BackendResults, Results } from "./run.js";
import type { SendPoint } from "./send.js";
import type { Backend } from "./server.js";
import { startVerdicts } from "./start-time.js";
import { round } from "./stats.js";

export const backendName: Record<Backend, string> = { postgres: "Postgres+NATS", pglite: "PGlite (embedded)" };

/** Sends, C=32 over 100 talks: at least this share of the raw baselines' throughput. */
export const sendRatioTarget = {
  concurrency: 32,
  talks: 100,
  ratio: { postgres: 0.8, pglite: 1.0 } satisfies Record<Backend, number>,
} as const;
/** Sends, C=32 over 100 talks: CPU of the server process per acknowledged send (ms). */
export const sendCpuTarget = { concurrency: 32, talks: 100, serverMsPerSend: 0.25 } as const;
/** Statements a change sends to the database (BEGIN and COMMIT included). */
export const roundTripsLimit = 2;
/** Sends from outside (grpc-js, one talk, C=8, 10 watchers): share of the raw insert per row, medians. */
export const outsideRatioTargets: Record<Backend, number> = { postgres: 0.5, pglite: 1.0 };
/** Fixed-rate fan-out on one talk at settings.fanout.fixedRate: delivery p99 limits by watcher count (ms). */
export const fanoutP99Limits: ReadonlyMap<number, number> = new Map([
  [10, 10],
  [50, 25],
]);
/** The fan-out points of their own rate and talk count (settings.fanoutTargets): delivery p99 limits (ms). */
export const fanoutTargetLimits: readonly { talks: number; watchers: number; rate: number; p99Ms: number }[] = [
  { talks: 1, watchers: 500, rate: 200, p99Ms: 100 },
  { talks: 1_000, watchers: 10, rate: 2_000, p99Ms: 25 },
];
/**
 * Server CPU per delivered event: the slope of the server's CPU over deliveries from 10 to 50
 * watchers at the same fixed rate (the sends, the same at both, cancel out), in µs.
 */
export const deliveryCpuTarget = { from: 10, to: 50, serverUsPerDelivery: 3 } as const;

/** The delivery p99 limit of a fixed-rate point (ms), if it has one. */
export function p99Limit(talks: number, watchers: number, rate: number | null): number | undefined {
  const own = fanoutTargetLimits.find((t) => t.talks === talks && t.watchers === watchers && t.rate === rate);
  if (own !== undefined) return own.p99Ms;
  return talks === 1 ? fanoutP99Limits.get(watchers) : undefined;
}
export const historyP99LimitMs = 5;
export const idleStreamLimitBytes = 8 * 1024;

export const fmt = (x: number | undefined | null, digits = 1): string =>
  x === undefined || x === null || Number.isNaN(x) ? "n/a" : round(x, digits).toLocaleString("en-US");

export interface Verdict {
  readonly backend: string;
  readonly what: string;
  readonly target: string;
  readonly measured: string;
  readonly met: boolean;
  readonly miss: string;
}

export function sendPoint(points: SendPoint[] | undefined, system: SendPoint["system"], c: number, talks: number): SendPoint | undefined {
  return points?.find((p) => p.system === system && p.concurrency === c && p.talks === talks);
}

/** Why a send point (Talkhub and its two baselines) is missed; empty when it is not. */
export function sendProblems(points: SendPoint[] | undefined, c: number, talks: number): string[] {
  const problems: string[] = [];
  for (const system of ["talkhub", "raw", "raw-batched"] as const) {
    const p = sendPoint(points, system, c, talks);
    if (p === undefined) problems.push(`${system}: did not complete`);
    else if (p.failed > 0) problems.push(`${system}: ${p.failed} sends failed`);
    else if (p.sends === 0) problems.push(`${system}: no send acknowledged`);
  }
  return problems;
}

/** Why a fan-out point is missed (rate, loss, refusals, failures, its p99 limit); empty when it is not. */
export function fanoutProblems(p: FanoutPoint | undefined, checkLatency: boolean): string[] {
  if (p === undefined) return ["did not run"];
  if (p.error !== undefined) return [`did not complete: ${p.error}`];
  const problems: string[] = [];
  if (p.targetRate !== null && p.sendRate < rateTolerance * p.targetRate) {
    problems.push(`rate ${p.sendRate}/s is ${fmt((100 * p.sendRate) / p.targetRate, 0)}% of ${p.targetRate}/s`);
  }
  if (p.lost > 0) problems.push(`${p.lost.toLocaleString("en-US")} lost`);
  if (p.duplicated > 0) problems.push(`${p.duplicated.toLocaleString("en-US")} duplicated`);
  if (p.refused > 0) problems.push(`${p.refused} subscriptions refused`);
  if (p.failedSends > 0) problems.push(`${p.failedSends} sends failed`);
  if (p.sent === 0) problems.push("nothing sent");
  const limit = p99Limit(p.talks, p.watchers, p.targetRate);
  if (checkLatency && p.mode === "fixed" && limit !== undefined && !(p.delivery.p99 <= limit)) {
    problems.push(
      `p99 ${fmt(p.delivery.p99, 1)} ms is +${fmt(p.delivery.p99 - limit, 1)} ms (${fmt(p.delivery.p99 / limit, 1)}x ${limit} ms)`,
    );
  }
  return problems;
}

function fanoutTarget(mode: "full" | "fixed", watchers: number, rate: number, talks = 1): string {
  const limit = mode === "fixed" ? p99Limit(talks, watchers, rate) : undefined;
  const parts = mode === "fixed" ? [`>= ${fmt(rateTolerance * rate, 0)} msg/s achieved`] : [];
  if (mode === "fixed" && limit !== undefined) parts.push(`p99 <= ${limit} ms`);
  parts.push("0 lost, dup, refused, failed");
  return parts.join("; ");
}

function fanoutMeasured(p: FanoutPoint | undefined): string {
  if (p === undefined) return "did not run";
  if (p.error !== undefined) return "did not complete";
  return (
    `${p.sent.toLocaleString("en-US")} of ${p.scheduled.toLocaleString("en-US")} sent at ${p.sendRate} msg/s; p99 ${fmt(p.delivery.p99, 1)} ms; ` +
    `lost ${p.lost.toLocaleString("en-US")}, dup ${p.duplicated}, refused ${p.refused}, failed ${p.failedSends}`
  );
}

export function verdicts(results: Results): Verdict[] {
  const out: Verdict[] = [];
  const { settings } = results;
  const has = (w: string) => (results.configured.workloads as string[]).includes(w);
  for (const b of results.configured.backends) {
    const name = backendName[b];
    const r: BackendResults = results.backends[b] ?? {};
    if (has("send")) {
      const { concurrency: c, talks } = sendRatioTarget;
      const want = sendRatioTarget.ratio[b];
      const t = sendPoint(r.send, "talkhub", c, talks);
      for (const [system, label] of [
        ["raw", "raw insert, one transaction per row"],
        ["raw-batched", "raw batched insert, Talkhub's batch size"],
      ] as const) {
        const base = sendPoint(r.send, system, c, talks);
        const ratio = t && base ? t.sendsPerSec / base.sendsPerSec : NaN;
        const met = ratio >= want;
        out.push({
          backend: name,
          what: `send throughput, ${talks} talks, C=${c}, vs ${label}`,
          target: `>= ${want.toFixed(2)}x`,
          measured:
            t && base
              ? `${fmt(t.sendsPerSec, 0)} vs ${fmt(base.sendsPerSec, 0)} sends/s = ${fmt(ratio, 2)}x${base.meanBatch !== undefined ? ` (batches: Talkhub ${fmt(t.meanBatch, 1)}, raw ${fmt(base.meanBatch, 1)})` : ""}`
              : "did not complete",
          met,
          miss: met ? "" : Number.isNaN(ratio) ? "did not complete" : `${fmt(want - ratio, 2)}x short`,
        });
      }
      out.push(sendCpuVerdict(r, name));
      const all = settings.send.spreads.flatMap((s) =>
        settings.send.concurrencies.map((cc) => ({ s, cc, problems: sendProblems(r.send, cc, s) })),
      );
      const bad = all.filter((x) => x.problems.length > 0);
      out.push({
        backend: name,
        what: `send: every point (${all.length}: C ${settings.send.concurrencies.join(", ")} x ${settings.send.spreads.join(", ")} talks, three systems each)`,
        target: "completed, 0 failed sends",
        measured: bad.length === 0 ? "all completed, 0 failed" : `${bad.length} of ${all.length} points missed`,
        met: bad.length === 0,
        miss: bad.map((x) => `C=${x.cc} talks=${x.s}: ${x.problems.join(", ")}`).join("; "),
      });
    }
    if (has("outside")) out.push(outsideVerdict(results, b));
    if (has("start") && b === "pglite") out.push(...startVerdicts(r.start, settings.start.runs, name));
    if (has("fanout")) {
      for (const watchers of settings.fanout.watchers) {
        for (const mode of settings.fanout.modes) {
          const p = r.fanout?.find((f) => f.system === "talkhub" && f.watchers === watchers && f.mode === mode);
          const problems = fanoutProblems(p, true);
          out.push({
            backend: name,
            what: `fan-out to ${watchers} watchers, ${mode === "fixed" ? `fixed ${fmt(settings.fanout.fixedRate, 0)} msg/s` : `full speed (${settings.fanout.fullConcurrency} senders)`}`,
            target: fanoutTarget(mode, watchers, settings.fanout.fixedRate),
            measured: fanoutMeasured(p),
            met: problems.length === 0,
            miss: problems.join("; "),
          });
        }
      }
    }
    if (has("fanout")) {
      for (const target of settings.fanoutTargets) {
        const p = r.fanoutTargets?.find((f) => f.talks === target.talks && f.watchers === target.watchers && f.targetRate === target.rate);
        const problems = fanoutProblems(p, true);
        out.push({
          backend: name,
          what:
            target.talks === 1
              ? `fan-out: one talk, ${fmt(target.watchers, 0)} watchers, fixed ${fmt(target.rate, 0)} msg/s`
              : `fan-out: ${fmt(target.talks, 0)} talks x ${fmt(target.watchers, 0)} watchers, fixed ${fmt(target.rate, 0)} msg/s spread over the talks`,
          target: fanoutTarget("fixed", target.watchers, target.rate, target.talks),
          measured: fanoutMeasured(p),
          met: problems.length === 0,
          miss: problems.join("; "),
        });
      }
      out.push(deliveryCpuVerdict(r, name, settings.fanout.fixedRate));
    }
    if (has("round-trips")) {
      for (const change of changes) {
        const c = r.roundTrips?.find((x) => x.change === change);
        const met = c !== undefined && c.statements <= roundTripsLimit;
        out.push({
          backend: name,
          what: `round trips per ${change}`,
          target: `<= ${roundTripsLimit} statements (BEGIN and COMMIT count)`,
          measured: c === undefined ? "did not run" : `${c.statements} (the most of ${c.runs} runs)`,
          met,
          miss: met
            ? ""
            : c === undefined
              ? "did not run"
              : `+${c.statements - roundTripsLimit}: ${c.sample.map((q) => q.slice(0, 60)).join(" | ")}`,
        });
      }
    }
    if (has("history")) {
      // Every page the run was configured to time (from the seed sizes), each with a verdict.
      const size = settings.history[b];
      for (const planned of historyCases(size.messages, size.talks)) {
        const c = r.history?.cases.find((x) => x.name === planned.name);
        const met = c !== undefined && c.talkhub.p99 < historyP99LimitMs;
        const cpu = c?.cpuPerCall?.["server"] === undefined ? "" : `; server CPU ${fmt(c.cpuPerCall["server"], 3)} ms/call`;
        out.push({
          backend: name,
          what: `history: ${planned.name}`,
          target: `p99 < ${historyP99LimitMs} ms`,
          measured: c === undefined ? "did not complete" : `p99 ${fmt(c.talkhub.p99, 2)} ms (p50 ${fmt(c.talkhub.p50, 2)})${cpu}`,
          met,
          miss: met
            ? ""
            : c === undefined
              ? "did not complete"
              : `+${fmt(c.talkhub.p99 - historyP99LimitMs, 2)} ms (${fmt(c.talkhub.p99 / historyP99LimitMs, 1)}x)`,
        });
      }
    }
    if (has("capacity")) {
      for (const kind of ["grpc", "ws"] as const) {
        const c = r.capacity?.find((x) => x.kind === kind);
        const asked = settings.capacity[b][kind];
        const problems: string[] = [];
        if (c === undefined) problems.push("did not complete");
        else {
          if (kind === "grpc") {
            // Both after GC. RSS that fell while streams were added (pages handed back after the
            // collection) measures the allocator, not the streams: it cannot meet the target.
            if (!(c.rssPerSubscription >= 0))
              problems.push(`RSS fell by ${fmt(-c.rssPerSubscription / 1024, 2)} KiB per stream: not a measurement`);
            else if (!(c.rssPerSubscription <= idleStreamLimitBytes))
              problems.push(
                `RSS +${fmt((c.rssPerSubscription - idleStreamLimitBytes) / 1024, 2)} KiB (${fmt(c.rssPerSubscription / idleStreamLimitBytes, 1)}x)`,
              );
            if (!(c.heapPerSubscription <= idleStreamLimitBytes))
              problems.push(
                `heap +${fmt((c.heapPerSubscription - idleStreamLimitBytes) / 1024, 2)} KiB (${fmt(c.heapPerSubscription / idleStreamLimitBytes, 1)}x)`,
              );
          }
          if (c.refused > 0) problems.push(`${c.refused} of ${c.subscriptions} refused`);
          if (c.pending > 0) problems.push(`${c.pending} neither opened nor refused`);
          if (c.lost > 0) problems.push(`${c.lost} of the opened missed the message`);
        }
        out.push({
          backend: name,
          what: `${asked.toLocaleString("en-US")} idle ${kind === "grpc" ? "WatchTalk streams" : "WebSocket subscribers"}`,
          target: `${kind === "grpc" ? `<= ${idleStreamLimitBytes / 1024} KiB RSS and heap per opened stream (after GC); ` : ""}all open, 0 lost`,
          measured:
            c === undefined
              ? "did not complete"
              : `${c.opened} opened, ${c.refused} refused; ${fmt(c.rssPerSubscription / 1024, 2)} KiB RSS, ${fmt(c.heapPerSubscription / 1024, 2)} KiB heap per opened; lost ${c.lost}`,
          met: problems.length === 0,
          miss: problems.join("; "),
        });
      }
    }
    if (has("scale")) {
      const bad: string[] = [];
      // Talk counts above the talks seeded for this backend are not configured for it.
      const talkCounts = settings.scale.talkCounts.filter((t) => t <= settings.history[b].talks);
      for (const talks of talkCounts) {
        const p = r.scale?.talks.find((x) => x.talks === talks);
        if (p === undefined) bad.push(`${talks} talks: did not run`);
        else if (p.failed > 0 || p.sends === 0) bad.push(`${talks} talks: ${p.failed} failed`);
      }
      for (const watchers of settings.scale.watcherCounts) {
        const problems = fanoutProblems(
          r.scale?.watchers.find((x) => x.watchers === watchers),
          false,
        );
        if (problems.length > 0) bad.push(`${watchers} watchers: ${problems.join(", ")}`);
      }
      const count = talkCounts.length + settings.scale.watcherCounts.length;
      out.push({
        backend: name,
        what: `scale curves: every point (${count})`,
        target: "completed; fixed rate kept; 0 failed, lost, dup",
        measured: bad.length === 0 ? "all completed" : `${bad.length} of ${count} missed`,
        met: bad.length === 0,
        miss: bad.join("; "),
      });
    }
  }
  return out;
}

/** Sends from outside: the median ratio to the raw insert, every run complete, nothing failed, lost or duplicated. */
function outsideVerdict(results: Results, b: Backend): Verdict {
  const o = results.settings.outside;
  const want = outsideRatioTargets[b];
  const result = results.backends[b]?.outside;
  const t = outsideMedians(result, "talkhub");
  const raw = outsideMedians(result, "raw");
  const ratio = t && raw ? t.sendsPerSec / raw.sendsPerSec : NaN;
  const problems: string[] = [];
  if (result?.error !== undefined) problems.push(`did not complete: ${result.error}`);
  if (!t || !raw || t.runs < o.runs || raw.runs < o.runs)
    problems.push(`${t?.runs ?? 0} + ${raw?.runs ?? 0} of ${o.runs} + ${o.runs} runs`);
  if (t && t.failed + (raw?.failed ?? 0) > 0) problems.push(`${t.failed + (raw?.failed ?? 0)} sends failed`);
  if (t && t.lost > 0) problems.push(`${t.lost.toLocaleString("en-US")} deliveries lost`);
  if (t && t.duplicated > 0) problems.push(`${t.duplicated} duplicated`);
  if (!(ratio >= want) && !Number.isNaN(ratio)) problems.push(`${fmt(want - ratio, 2)}x short`);
  const cpu = t?.cpuPerSend ?? {};
  const cpuText =
    b === "postgres"
      ? `server ${fmt(cpu["server"], 2)}, Postgres ${fmt(cpu["postgres"], 2)}, NATS ${fmt(cpu["nats"], 2)}`
      : `server ${fmt(cpu["server"], 2)}`;
  return {
    backend: backendName[b],
    what: `sends from outside (grpc-js), one talk, C=${o.concurrency}, ${o.watchers} watchers, vs raw insert per row (medians of ${o.runs} runs of ${fmt(o.messages, 0)})`,
    target: `>= ${want.toFixed(2)}x; 0 failed, lost, dup`,
    measured:
      t && raw
        ? `${fmt(t.sendsPerSec, 0)} vs ${fmt(raw.sendsPerSec, 0)} sends/s = ${fmt(ratio, 2)}x; CPU ms/send ${cpuText}; lost ${t.lost}`
        : "did not complete",
    met: problems.length === 0,
    miss: problems.join("; "),
  };
}

/** Server CPU per acknowledged send at the send target's point (the CPU table's step). */
function sendCpuVerdict(r: BackendResults, name: string): Verdict {
  const { concurrency: c, talks, serverMsPerSend: want } = sendCpuTarget;
  const per = sendPoint(r.send, "talkhub", c, talks)?.serverCpuPerSendMs;
  const met = per !== undefined && per <= want;
  return {
    backend: name,
    what: `server CPU per acknowledged send, ${talks} talks, C=${c}`,
    target: `<= ${want} ms`,
    measured: per === undefined || Number.isNaN(per) ? "not measured" : `${fmt(per, 3)} ms`,
    met,
    miss: met ? "" : per === undefined || Number.isNaN(per) ? "not measured" : `+${fmt(per - want, 3)} ms (${fmt(per / want, 1)}x)`,
  };
}

/**
 * Server CPU per delivered event: (CPU at 50 watchers - CPU at 10) / (deliveries at 50 -
 * deliveries at 10), both fixed-rate points on one talk.
 */
function deliveryCpuVerdict(r: BackendResults, name: string, rate: number): Verdict {
  const { from, to, serverUsPerDelivery: want } = deliveryCpuTarget;
  const at = (watchers: number) =>
    r.fanout?.find(
      (f) => f.system === "talkhub" && f.talks === 1 && f.watchers === watchers && f.mode === "fixed" && f.error === undefined,
    );
  const low = at(from);
  const high = at(to);
  const what = `server CPU per delivered event: slope from ${from} to ${to} watchers at ${fmt(rate, 0)} msg/s`;
  const target = `<= ${want} µs`;
  if (low?.serverCpuMs === undefined || high?.serverCpuMs === undefined || high.delivered <= low.delivered) {
    return { backend: name, what, target, measured: "not measured", met: false, miss: "not measured" };
  }
  const us = ((high.serverCpuMs - low.serverCpuMs) * 1000) / (high.delivered - low.delivered);
  // Less CPU for five times the deliveries measures the machine's other work, not the server:
  // it cannot meet the target.
  const met = us >= 0 && us <= want;
  return {
    backend: name,
    what,
    target,
    measured: `(${fmt(high.serverCpuMs, 0)} - ${fmt(low.serverCpuMs, 0)}) ms / (${high.delivered.toLocaleString("en-US")} - ${low.delivered.toLocaleString("en-US")}) deliveries = ${fmt(us, 2)} µs`,
    met,
    miss: met ? "" : us < 0 ? "CPU fell as deliveries grew: not a measurement" : `+${fmt(us - want, 2)} µs (${fmt(us / want, 1)}x)`,
  };
}
