/** Writes the results as JSON, a markdown report with the targets and ratios, and SVG charts. */
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { FanoutPoint } from "./fanout.js";
import { outsideMedians, type OutsideResult } from "./outside.js";
import { startTimeLines } from "./start-time.js";
import type { BackendResults, Results } from "./run.js";
import type { Backend } from "./server.js";
import { backendName, fanoutProblems, fmt, sendPoint, sendProblems, verdicts } from "./targets.js";

type B = Backend;

const kib = (bytes: number) => fmt(bytes / 1024, 2);
const esc = (s: string) => s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");

function entries(results: Results): [B, BackendResults][] {
  return Object.entries(results.backends) as [B, BackendResults][];
}

function fixedPoint(points: FanoutPoint[] | undefined, system: string, r: number, mode = "fixed") {
  return points?.find((p) => p.system === system && p.watchers === r && p.mode === mode);
}

// ------------------------------------------------------------------------------------------
// SVG
// ------------------------------------------------------------------------------------------

interface BarRow {
  readonly label: string;
  readonly p50: number;
  readonly p99: number;
  readonly group: string;
}

const palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"];

function barPanel(title: string, rows: BarRow[], y0: number, width: number): { svg: string; height: number } {
  const left = 300;
  const plotW = width - left - 40;
  const rowH = 16;
  const values = rows.flatMap((r) => [r.p50, r.p99]).filter((v) => v > 0 && Number.isFinite(v));
  const lo = 0.1;
  const hi = Math.max(1, ...values) * 1.2;
  const x = (v: number) => left + (plotW * Math.log10(Math.max(lo, v) / lo)) / Math.log10(hi / lo);
  const groups = [...new Set(rows.map((r) => r.group))];
  const parts: string[] = [`<text x="10" y="${y0 + 16}" font-size="14" font-weight="bold">${esc(title)}</text>`];
  const top = y0 + 28;
  const height = 28 + rows.length * rowH + 30;
  for (let d = -1; 10 ** d <= hi; d++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** d;
      if (v < lo || v > hi) continue;
      parts.push(`<line x1="${x(v)}" y1="${top}" x2="${x(v)}" y2="${top + rows.length * rowH}" stroke="#ddd"/>`);
      parts.push(
        `<text x="${x(v)}" y="${top + rows.length * rowH + 12}" font-size="10" text-anchor="middle">${v >= 1 ? v : v.toFixed(1)}</text>`,
      );
    }
  }
  parts.push(
    `<text x="${left + plotW / 2}" y="${top + rows.length * rowH + 25}" font-size="10" text-anchor="middle">ms (log scale); dark = p50, light = p99</text>`,
  );
  rows.forEach((row, i) => {
    const y = top + i * rowH;
    const color = palette[groups.indexOf(row.group) % palette.length];
    parts.push(`<text x="${left - 6}" y="${y + 11}" font-size="10" text-anchor="end">${esc(row.label)}</text>`);
    if (Number.isFinite(row.p99))
      parts.push(
        `<rect x="${left}" y="${y + 2}" width="${Math.max(1, x(row.p99) - left)}" height="${rowH - 4}" fill="${color}" fill-opacity="0.35"/>`,
      );
    if (Number.isFinite(row.p50))
      parts.push(`<rect x="${left}" y="${y + 2}" width="${Math.max(1, x(row.p50) - left)}" height="${rowH - 4}" fill="${color}"/>`);
    if (Number.isFinite(row.p99))
      parts.push(`<text x="${x(row.p99) + 3}" y="${y + 11}" font-size="9">${fmt(row.p50, 2)} / ${fmt(row.p99, 2)}</text>`);
  });
  return { svg: parts.join("\n"), height };
}

function latencySvg(results: Results): string {
  const width = 900;
  const send: BarRow[] = [];
  const fan: BarRow[] = [];
  const hist: BarRow[] = [];
  for (const [b, r] of entries(results)) {
    for (const p of r.send ?? []) {
      if (p.talks !== 100) continue;
      send.push({
        label: `${b} ${p.system === "raw" ? "raw insert" : "Talkhub"} C=${p.concurrency}`,
        p50: p.ack.p50,
        p99: p.ack.p99,
        group: `${b}-${p.system}`,
      });
    }
    for (const p of [...(r.fanout ?? []), ...(r.fanoutTargets ?? [])]) {
      fan.push({
        label: `${p.system === "nats" ? "NATS core" : b}${p.talks > 1 ? ` ${p.talks} talks x` : ""} R=${p.watchers} ${p.mode === "fixed" ? `${fmt(p.targetRate ?? NaN, 0)}/s` : "full speed"}`,
        p50: p.delivery.p50,
        p99: p.delivery.p99,
        group: p.system === "nats" ? "nats" : b,
      });
    }
    for (const c of r.history?.cases ?? []) {
      hist.push({ label: `${b} ${c.name}`, p50: c.talkhub.p50, p99: c.talkhub.p99, group: b });
      if (c.raw)
        hist.push({ label: `${b} raw SQL ${c.name.replace(/^ListMessages /, "")}`, p50: c.raw.p50, p99: c.raw.p99, group: `${b}-raw` });
    }
    for (const c of r.capacity ?? []) {
      fan.push({
        label: `${b} 1 msg to ${c.subscriptions} idle ${c.kind === "ws" ? "WebSockets" : "streams"}`,
        p50: c.delivery.p50,
        p99: c.delivery.p99,
        group: `${b}-capacity`,
      });
    }
  }
  let y = 10;
  const panels: string[] = [];
  for (const [title, rows] of [
    ["Send: ack latency, 100 talks", send],
    ["Fan-out: delivery latency (send start to receipt)", fan],
    ["History: page latency", hist],
  ] as const) {
    if (rows.length === 0) continue;
    const panel = barPanel(title, rows, y, width);
    panels.push(panel.svg);
    y += panel.height + 10;
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" font-family="sans-serif">\n<rect width="100%" height="100%" fill="white"/>\n${panels.join("\n")}\n</svg>\n`;
}

function linePanel(
  title: string,
  xLabel: string,
  yLabel: string,
  series: { name: string; points: [number, number][] }[],
  x0: number,
  w: number,
  h: number,
): string {
  const left = x0 + 60;
  const top = 40;
  const plotW = w - 90;
  const plotH = h - 90;
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => p[1])).filter(Number.isFinite);
  if (xs.length === 0) return "";
  const xLo = Math.min(...xs);
  const xHi = Math.max(...xs, xLo * 10);
  const yHi = Math.max(...ys, 1) * 1.15;
  const px = (v: number) => left + (plotW * Math.log10(v / xLo)) / Math.log10(xHi / xLo);
  const py = (v: number) => top + plotH - (plotH * v) / yHi;
  const parts = [`<text x="${x0 + 10}" y="22" font-size="14" font-weight="bold">${esc(title)}</text>`];
  parts.push(
    `<line x1="${left}" y1="${top + plotH}" x2="${left + plotW}" y2="${top + plotH}" stroke="#333"/><line x1="${left}" y1="${top}" x2="${left}" y2="${top + plotH}" stroke="#333"/>`,
  );
  for (const v of [...new Set(xs)].sort((a, b) => a - b)) {
    parts.push(`<text x="${px(v)}" y="${top + plotH + 14}" font-size="10" text-anchor="middle">${v.toLocaleString("en-US")}</text>`);
  }
  for (let i = 0; i <= 4; i++) {
    const v = (yHi * i) / 4;
    parts.push(
      `<line x1="${left}" y1="${py(v)}" x2="${left + plotW}" y2="${py(v)}" stroke="#eee"/><text x="${left - 4}" y="${py(v) + 3}" font-size="10" text-anchor="end">${fmt(v, v < 10 ? 1 : 0)}</text>`,
    );
  }
  parts.push(`<text x="${left + plotW / 2}" y="${top + plotH + 30}" font-size="11" text-anchor="middle">${esc(xLabel)}</text>`);
  parts.push(
    `<text x="${x0 + 14}" y="${top + plotH / 2}" font-size="11" text-anchor="middle" transform="rotate(-90 ${x0 + 14} ${top + plotH / 2})">${esc(yLabel)}</text>`,
  );
  series.forEach((s, i) => {
    const color = palette[i % palette.length];
    const pts = s.points.filter((p) => Number.isFinite(p[1])).sort((a, b) => a[0] - b[0]);
    parts.push(
      `<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.map((p) => `${px(p[0])},${py(p[1])}`).join(" ")}"/>`,
    );
    for (const p of pts) parts.push(`<circle cx="${px(p[0])}" cy="${py(p[1])}" r="3" fill="${color}"/>`);
    parts.push(`<text x="${left + 10}" y="${top + 14 + i * 14}" font-size="11" fill="${color}">${esc(s.name)}</text>`);
  });
  return parts.join("\n");
}

function scaleSvg(results: Results): string {
  const talkSeries: { name: string; points: [number, number][] }[] = [];
  const watcherSeries: { name: string; points: [number, number][] }[] = [];
  for (const [b, r] of entries(results)) {
    if (r.scale?.talks.length)
      talkSeries.push({
        name: `${backendName[b]} C=${r.scale.talks[0]?.concurrency ?? ""}`,
        points: r.scale.talks.map((p) => [p.talks, p.sendsPerSec]),
      });
    const fixed = [...(r.fanout ?? []), ...(r.scale?.watchers ?? [])].filter((p) => p.system === "talkhub" && p.mode === "fixed");
    if (fixed.length) watcherSeries.push({ name: `${backendName[b]} p99`, points: fixed.map((p) => [p.watchers, p.delivery.p99]) });
  }
  const nats = entries(results).flatMap(([, r]) => (r.fanout ?? []).filter((p) => p.system === "nats" && p.mode === "fixed"));
  if (nats.length) watcherSeries.push({ name: "NATS core p99", points: nats.map((p) => [p.watchers, p.delivery.p99]) });
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="1000" height="380" font-family="sans-serif">\n<rect width="100%" height="100%" fill="white"/>\n` +
    linePanel("Send throughput as talks grow", "talks the sends spread over (log)", "acknowledged sends/s", talkSeries, 0, 500, 380) +
    "\n" +
    linePanel(
      `Delivery p99 at ${fmt(results.settings.fanout.fixedRate, 0)} msg/s as watchers grow`,
      "watchers on one talk (log)",
      "delivery p99, ms",
      watcherSeries,
      500,
      500,
      380,
    ) +
    "\n</svg>\n"
  );
}

// ------------------------------------------------------------------------------------------
// Markdown
// ------------------------------------------------------------------------------------------

function table(header: string[], rows: (string | number)[][]): string {
  return [`| ${header.join(" | ")} |`, `|${header.map(() => "---").join("|")}|`, ...rows.map((r) => `| ${r.join(" | ")} |`)].join("\n");
}

/** Sends from outside: every run (Talkhub and raw interleaved) and the medians, with CPU per send. */
function outsideLines(o: OutsideResult, results: Results): string[] {
  const s = results.settings.outside;
  const roles = ["server", "postgres", "nats", "bench", "watchers"].filter((role) => o.runs.some((r) => r.cpuPerSend[role] !== undefined));
  const row = (what: string, sendsPerSec: number, ack: string, cpu: Record<string, number>, checks: string) => [
    what,
    fmt(sendsPerSec, 0),
    ack,
    ...roles.map((role) => fmt(cpu[role], 3)),
    checks,
  ];
  const rows = o.runs.map((r, i) =>
    row(
      `${r.system === "talkhub" ? "Talkhub" : "raw"} run ${Math.floor(i / 2) + 1}`,
      r.sendsPerSec,
      `${fmt(r.ack.p50, 2)} / ${fmt(r.ack.p99, 2)}`,
      r.cpuPerSend,
      `${r.sends.toLocaleString("en-US")} acked, ${r.failed} failed${r.system === "talkhub" ? `; lost ${r.lost ?? "n/a"}, dup ${r.duplicated ?? "n/a"}, refused ${r.refused ?? "n/a"}` : ""}`,
    ),
  );
  const t = outsideMedians(o, "talkhub");
  const raw = outsideMedians(o, "raw");
  for (const [name, m] of [
    ["Talkhub", t],
    ["raw", raw],
  ] as const)
    if (m) rows.push(row(`**${name} median of ${m.runs}**`, m.sendsPerSec, "", m.cpuPerSend, ""));
  return [
    `### Sends from outside (plain @grpc/grpc-js client, one talk, C=${s.concurrency}, ${s.watchers} grpc-js WatchTalk watchers; vs raw insert per row: ${o.rawLabel})`,
    "",
    `${fmt(s.messages, 0)} messages per run, runs interleaved (Talkhub, raw, Talkhub, raw...) after ${s.warmup} unmeasured sends of each. ` +
      "A Talkhub run's CPU window ends when every watcher has every acknowledged message. CPU in ms per acknowledged send:",
    "",
    table(["run", "sends/s", "ack p50 / p99 ms", ...roles, "checks"], rows),
    "",
    ...(t && raw
      ? [
          `Ratio of the medians: ${fmt(t.sendsPerSec, 0)} / ${fmt(raw.sendsPerSec, 0)} = **${fmt(t.sendsPerSec / raw.sendsPerSec, 2)}x**.`,
          "",
        ]
      : []),
    ...(o.error !== undefined ? [`Did not complete: ${o.error}`, ""] : []),
    ...o.notes.map((n) => `- ${n}`),
    ...(o.notes.length > 0 ? [""] : []),
  ];
}

const verdictCell = (problems: string[]) => (problems.length === 0 ? "met" : `**missed**: ${problems.join("; ")}`);

/** The CPU table of a backend: ms of CPU per operation of each role, per measured step. */
function cpuTable(r: BackendResults, ticksPerSecond: number): string[] {
  const steps = r.cpu ?? [];
  if (steps.length === 0) return [];
  const roles = Object.keys(r.cpuRoles ?? {});
  const lines = [
    "CPU per operation, ms (utime + stime from `/proc/<pid>/stat`, sampled right before and after each step's measured window and divided by the operations it completed; warm-ups are outside the window). " +
      `CPU times count in clock ticks of ${fmt(1000 / ticksPerSecond, 1)} ms per process, so a step with few operations is coarse:`,
    "",
    ...roles.map((role) => `- ${role}: ${r.cpuRoles?.[role] ?? ""}`),
    "",
    table(
      ["step", "operations", "per second", ...roles, "total"],
      steps.map((s) => {
        const total = roles.reduce((a, role) => a + (s.cpuMs[role] ?? 0), 0);
        return [
          s.step,
          `${s.operations.toLocaleString("en-US")} ${s.unit}`,
          fmt((s.operations * 1000) / s.wallMs, 0),
          ...roles.map((role) => fmt(s.perOperationMs[role], 3)),
          s.operations > 0 ? fmt(total / s.operations, 3) : "n/a",
        ];
      }),
    ),
    "",
  ];
  return lines;
}

function markdown(results: Results): string {
  const env = results.environment;
  const { settings } = results;
  const rate = fmt(settings.fanout.fixedRate, 0);
  const lines: string[] = [];
  lines.push(`# Talkhub benchmarks ${results.date}`);
  lines.push("");
  lines.push(
    `Run ${results.startedAt} -> ${results.finishedAt} (${results.durationS} s)${results.quick ? ", **--quick** (short points, smaller data; indicative only)" : ""}. ` +
      `Node ${env.node}, Postgres ${env.postgres}, NATS ${env.nats}, Linux ${env.kernel}; ${env.cpus} cores (${env.cpuModel}), ${env.memoryGiB} GiB. ` +
      `Load average at start ${JSON.stringify(env.loadAvgAtStart)}, at end ${JSON.stringify(env.loadAvgAtEnd)}.`,
  );
  lines.push("");
  lines.push(
    `**How it was measured.** The server under test runs as a child process (\`${env.serverProcess}\`, DB pool of ${env.serverDbPool}, ` +
      "Postgres at 127.0.0.1:5432 with NATS at 127.0.0.1:4222, or the embedded PGlite in a temp data dir with the in-process bus); the load generators run in the bench process, " +
      `and the fan-out/capacity watchers in ${env.watcherProcesses} forked watcher processes. gRPC load and watchers use the bench's lean HTTP/2 transport (\`bench/lean-transport.ts\`), as the baselines use lean clients (\`pg\`, the NATS client). ` +
      `The server, Postgres, NATS, the load generators and the watchers all share the machine's ${env.cpus} cores, ` +
      "so throughput is CPU-bound for every system and latency includes scheduling of the client side too; the load averages above show how much other work shared them. " +
      "Talkhub and its baselines are measured back to back in the same run, point by point; ratios compare those pairs. Latencies are nearest-rank percentiles of every sample; " +
      "fixed-rate latencies (ack and delivery) count from each message's scheduled send time, so a sender held back by the service is charged the wait; throughput is acknowledged operations over the measured window. " +
      "Idle-subscription memory is read after a forced full GC in the server and divided by the subscriptions that opened.",
  );
  lines.push("");
  if (results.errors.length > 0) {
    lines.push("## Errors");
    lines.push("");
    for (const e of results.errors) lines.push(`\`\`\`\n${e}\n\`\`\``);
    lines.push("");
  }
  const vs = verdicts(results);
  const missed = vs.filter((v) => !v.met);
  lines.push("## Targets");
  lines.push("");
  lines.push(
    `Every point this run was configured for (backends ${results.configured.backends.join(", ")}; workloads ${results.configured.workloads.join(", ")}): ` +
      `**${vs.length - missed.length} met, ${missed.length} missed**. A point that did not complete, lost, duplicated or refused anything, or kept less than 95% of its fixed rate, is missed.`,
  );
  lines.push("");
  lines.push(
    table(
      ["backend", "what", "target", "measured", "met", "missed by"],
      vs.map((t) => [t.backend, t.what, t.target, t.measured, t.met ? "yes" : "**no**", t.miss]),
    ),
  );
  lines.push("");
  lines.push(`![latency percentiles](${results.date}.svg)`);
  lines.push("");

  for (const [b, r] of entries(results)) {
    lines.push(`## ${backendName[b]}`);
    lines.push("");
    if (r.seedMs !== undefined) lines.push(`Seeded by bulk SQL in ${fmt(r.seedMs / 1000, 1)} s.`);
    lines.push("");
    if (r.send) {
      lines.push(`### 1. Send (gRPC SendMessage vs raw insert per row: ${r.rawLabel ?? ""}; vs raw batched: ${r.rawBatchedLabel ?? ""})`);
      lines.push("");
      const rows: (string | number)[][] = [];
      for (const talks of settings.send.spreads) {
        for (const c of settings.send.concurrencies) {
          const t = sendPoint(r.send, "talkhub", c, talks);
          const raw = sendPoint(r.send, "raw", c, talks);
          const batched = sendPoint(r.send, "raw-batched", c, talks);
          const ratio = (x: typeof t) => (t && x ? `${fmt(t.sendsPerSec / x.sendsPerSec, 2)}x` : "n/a");
          rows.push([
            talks === 1 ? "one talk" : `${talks} talks`,
            c,
            t ? `${fmt(t.sendsPerSec, 0)} (${fmt(t.ack.p50, 2)} / ${fmt(t.ack.p99, 2)})` : "n/a",
            fmt(t?.meanBatch, 1),
            raw ? `${fmt(raw.sendsPerSec, 0)} (${fmt(raw.ack.p50, 2)} / ${fmt(raw.ack.p99, 2)})` : "n/a",
            batched ? `${fmt(batched.sendsPerSec, 0)} (${fmt(batched.ack.p50, 2)} / ${fmt(batched.ack.p99, 2)})` : "n/a",
            fmt(batched?.meanBatch, 1),
            ratio(raw),
            ratio(batched),
            verdictCell(sendProblems(r.send, c, talks)),
          ]);
        }
      }
      lines.push(
        table(
          [
            "spread",
            "C",
            "Talkhub sends/s (ack p50 / p99 ms)",
            "Talkhub batch",
            "raw per row /s (p50 / p99)",
            "raw batched /s (p50 / p99)",
            "raw batch",
            "ratio vs per row",
            "ratio vs batched",
            "point",
          ],
          rows,
        ),
      );
      lines.push("");
    }
    if (r.fanout) {
      lines.push("### 2. Fan-out (WatchTalk streams vs NATS core subscriptions)");
      lines.push("");
      const rows: (string | number)[][] = [];
      for (const watchers of settings.fanout.watchers) {
        for (const mode of settings.fanout.modes) {
          for (const system of b === "postgres" ? (["talkhub", "nats"] as const) : (["talkhub"] as const)) {
            const p = r.fanout.find((f) => f.system === system && f.watchers === watchers && f.mode === mode);
            rows.push([
              system === "nats" ? "NATS core" : "Talkhub",
              watchers,
              mode === "fixed" ? `${rate}/s` : `full speed (${settings.fanout.fullConcurrency} senders)`,
              p && p.error === undefined ? `${p.sent} of ${p.scheduled} (${p.sendRate}/s)` : "n/a",
              p && p.error === undefined ? `${fmt(p.delivery.p50, 2)} / ${fmt(p.delivery.p99, 2)} / ${fmt(p.delivery.max, 1)}` : "n/a",
              p && p.error === undefined ? fmt(p.deliveriesPerSec, 0) : "n/a",
              p ? `${p.lost.toLocaleString("en-US")} / ${p.duplicated} / ${p.refused}` : "n/a",
              verdictCell(fanoutProblems(p, system === "talkhub")),
              (p?.notes ?? []).join("; ").slice(0, 200),
            ]);
          }
        }
      }
      lines.push(
        table(
          [
            "system",
            "R",
            "load",
            "sent of scheduled (achieved msg/s)",
            "delivery p50 / p99 / max ms",
            "deliveries/s",
            "lost / dup / refused",
            "point",
            "notes",
          ],
          rows,
        ),
      );
      lines.push("");
      if (r.fanoutTargets?.length) {
        lines.push(
          "Talkhub at the targets' own rates (WatchTalk streams; with many talks the messages go round robin over them, each to its talk's watchers):",
        );
        lines.push("");
        lines.push(
          table(
            [
              "talks x watchers",
              "load",
              "sent of scheduled (achieved msg/s)",
              "delivery p50 / p99 / max ms",
              "deliveries/s",
              "lost / dup / refused",
              "point",
              "notes",
            ],
            r.fanoutTargets.map((p) => [
              `${p.talks.toLocaleString("en-US")} x ${p.watchers.toLocaleString("en-US")}`,
              `${fmt(p.targetRate, 0)}/s`,
              p.error === undefined ? `${p.sent} of ${p.scheduled} (${p.sendRate}/s)` : "n/a",
              p.error === undefined ? `${fmt(p.delivery.p50, 2)} / ${fmt(p.delivery.p99, 2)} / ${fmt(p.delivery.max, 1)}` : "n/a",
              p.error === undefined ? fmt(p.deliveriesPerSec, 0) : "n/a",
              `${p.lost.toLocaleString("en-US")} / ${p.duplicated} / ${p.refused}`,
              verdictCell(fanoutProblems(p, true)),
              (p.error !== undefined ? [p.error] : p.notes).join("; ").slice(0, 200),
            ]),
          ),
        );
        lines.push("");
      }
      for (const R of settings.fanout.watchers) {
        const t = fixedPoint(r.fanout, "talkhub", R);
        const n = fixedPoint(r.fanout, "nats", R) ?? fixedPoint(results.backends.postgres?.fanout, "nats", R);
        if (t && n && t.error === undefined && n.error === undefined) {
          lines.push(
            `- R=${R} at ${rate} msg/s (achieved: Talkhub ${t.sendRate}/s, NATS ${n.sendRate}/s): Talkhub delivery p50 ${fmt(t.delivery.p50, 2)} ms vs NATS core ${fmt(n.delivery.p50, 2)} ms (${fmt(t.delivery.p50 / n.delivery.p50, 1)}x); p99 ${fmt(t.delivery.p99, 2)} vs ${fmt(n.delivery.p99, 2)} ms (${fmt(t.delivery.p99 / n.delivery.p99, 1)}x).`,
          );
        }
      }
      lines.push("");
    }
    if (r.history) {
      const h = r.history;
      lines.push(
        `### 3. History (${h.messages.toLocaleString("en-US")} messages in one talk, agent in ${h.talks.toLocaleString("en-US")} talks)`,
      );
      lines.push("");
      lines.push(
        table(
          [
            "call",
            "depth",
            "Talkhub p50 / p99 / max ms",
            "server CPU ms/call",
            "Postgres CPU ms/call",
            "raw SQL p50 / p99 ms",
            "ratio p50",
          ],
          h.cases.map((c) => [
            c.name,
            c.depth.toLocaleString("en-US"),
            `${fmt(c.talkhub.p50, 2)} / ${fmt(c.talkhub.p99, 2)} / ${fmt(c.talkhub.max, 1)}`,
            fmt(c.cpuPerCall?.["server"], 3),
            fmt(c.cpuPerCall?.["postgres"], 3),
            c.raw ? `${fmt(c.raw.p50, 2)} / ${fmt(c.raw.p99, 2)}` : "n/a",
            c.raw ? `${fmt(c.talkhub.p50 / c.raw.p50, 1)}x` : "",
          ]),
        ),
      );
      const depthCost = (list: string, keyset: string, how: string) => {
        const pages = h.cases.filter((c) => c.name.startsWith(list));
        const first = pages[0];
        const deepest = pages.at(-1);
        if (first === undefined || deepest === undefined || deepest === first) return;
        lines.push(
          `\nDepth cost: ${list} p50 at depth ${deepest.depth.toLocaleString("en-US")} is ${fmt(deepest.talkhub.p50 / first.talkhub.p50, 2)}x the first page (keyset on ${keyset}; ${how}).`,
        );
      };
      depthCost(
        "ListMessages",
        "(chat_id, seq)",
        "the pages past 10,000 deep start from a token the bench builds in the service's format, the others are reached by paging",
      );
      depthCost("ListTalks", "the agent's memberships by (tm_activity, chat_id)", "every page is reached by paging");
      lines.push("");
    }
    if (r.capacity) {
      lines.push(
        `### 4. Capacity (idle subscriptions${results.quick ? " on the server the other workloads used" : " on one fresh server process"}; memory after a forced GC, per subscription that opened)`,
      );
      lines.push("");
      lines.push(
        table(
          [
            "kind",
            "asked",
            "opened / refused / pending",
            "open time ms",
            "server RSS before -> after MiB",
            "RSS per opened KiB",
            "V8 heap before -> after MiB",
            "heap per opened KiB",
            "1 message to all opened: p50 / p99 / max ms",
            "lost",
            "notes",
          ],
          r.capacity.map((c) => [
            c.kind === "grpc" ? "WatchTalk (gRPC)" : "WebSocket /v1.0/ws",
            c.subscriptions,
            `${c.opened} / ${c.refused} / ${c.pending}`,
            fmt(c.openMs, 0),
            `${fmt(c.rssBefore / 2 ** 20)} -> ${fmt(c.rssAfter / 2 ** 20)}`,
            kib(c.rssPerSubscription),
            `${fmt(c.heapBefore / 2 ** 20)} -> ${fmt(c.heapAfter / 2 ** 20)}`,
            kib(c.heapPerSubscription),
            `${fmt(c.delivery.p50, 1)} / ${fmt(c.delivery.p99, 1)} / ${fmt(c.delivery.max, 1)}`,
            c.lost,
            c.notes.join("; ").slice(0, 200),
          ]),
        ),
      );
      lines.push("");
    }
    if (r.scale) {
      lines.push("### 5. Scale curves");
      lines.push("");
      lines.push(
        table(
          ["talks", `sends/s (C=${r.scale.talks[0]?.concurrency ?? "n/a"})`, "ack p50 / p99 ms", "failed"],
          r.scale.talks.map((p) => [
            p.talks.toLocaleString("en-US"),
            fmt(p.sendsPerSec, 0),
            `${fmt(p.ack.p50, 2)} / ${fmt(p.ack.p99, 2)}`,
            p.failed,
          ]),
        ),
      );
      lines.push("");
      const fixed = [...(r.fanout ?? []), ...r.scale.watchers]
        .filter((p) => p.system === "talkhub" && p.mode === "fixed" && p.error === undefined)
        .sort((a, b) => a.watchers - b.watchers);
      lines.push(
        table(
          ["watchers", `achieved msg/s (of ${rate})`, "delivery p50 / p99 / max ms", "lost", "dup"],
          fixed.map((p) => [
            p.watchers,
            p.sendRate,
            `${fmt(p.delivery.p50, 2)} / ${fmt(p.delivery.p99, 2)} / ${fmt(p.delivery.max, 1)}`,
            p.lost,
            p.duplicated,
          ]),
        ),
      );
      lines.push("");
    }
    if (r.outside) lines.push(...outsideLines(r.outside, results));
    if (r.start) lines.push(...startTimeLines(r.start));
    const cpu = cpuTable(r, results.environment.cpuTicksPerSecond ?? 100);
    if (cpu.length > 0) {
      lines.push("### CPU per operation");
      lines.push("");
      lines.push(...cpu);
    }
    if (r.profile) {
      const p = r.profile;
      lines.push(
        `### Send-path CPU profile (server child under \`--cpu-prof\`, C=${settings.profile.concurrency} over ${settings.profile.talks} talks; ${fmt(p.totalMs / 1000, 1)} s profiled, ${p.idlePercent}% idle)`,
      );
      lines.push("");
      lines.push("Top self time, % of non-idle samples:");
      lines.push("");
      lines.push(
        table(
          ["function", "where", "self ms", "%"],
          p.functions.slice(0, 15).map((f) => [`\`${f.name}\``, f.where, f.selfMs, f.percent]),
        ),
      );
      lines.push("");
      lines.push("By package / file:");
      lines.push("");
      lines.push(
        table(
          ["package or file", "self ms", "%"],
          p.groups.slice(0, 12).map((g) => [g.name, g.selfMs, g.percent]),
        ),
      );
      lines.push("");
    }
  }
  lines.push("## Charts");
  lines.push("");
  lines.push(
    `- [${results.date}.svg](${results.date}.svg): latency percentiles (p50 dark, p99 light) of sends, fan-out deliveries, capacity deliveries and history pages.`,
  );
  lines.push(`- [${results.date}-scale.svg](${results.date}-scale.svg): the scale curves.`);
  lines.push("");
  lines.push(`![scale curves](${results.date}-scale.svg)`);
  lines.push("");
  return lines.join("\n");
}

/** A report name not taken yet: <date>, then <date>-2, -3... (committed reports are never overwritten). */
async function freeName(dir: string, date: string): Promise<string> {
  for (let n = 1; n < 1000; n++) {
    const name = n === 1 ? date : `${date}-${n}`;
    if (!existsSync(join(dir, `${name}.json`))) return name;
  }
  throw new Error(`no free report name for ${date} in ${dir}`);
}

/** Writes the report files; a new name unless `rewrite` (the same run's files, re-rendered). */
export async function writeReport(dir: string, results: Results, rewrite = false): Promise<string[]> {
  if (!rewrite) results.date = await freeName(dir, results.date);
  const base = join(dir, results.date);
  await writeFile(`${base}.json`, `${JSON.stringify({ ...results, verdicts: verdicts(results) }, null, 2)}\n`);
  await writeFile(`${base}.svg`, latencySvg(results));
  await writeFile(`${base}-scale.svg`, scaleSvg(results));
  await writeFile(`${base}.md`, markdown(results));
  return [`${base}.json`, `${base}.md`, `${base}.svg`, `${base}-scale.svg`];
}
