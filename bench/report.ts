/** Writes the results as JSON, a markdown report with the targets and ratios, and SVG charts. */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { FanoutPoint } from "./fanout.js";
import type { BackendResults, Results } from "./run.js";
import type { SendPoint } from "./send.js";
import { round } from "./stats.js";

const backendName = { postgres: "Postgres+NATS", pglite: "PGlite (embedded)" } as const;
type B = keyof typeof backendName;

const fmt = (x: number | undefined, digits = 1) => (x === undefined || Number.isNaN(x) ? "n/a" : round(x, digits).toLocaleString("en-US"));
const kib = (bytes: number) => fmt(bytes / 1024, 2);
const esc = (s: string) => s.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");

function entries(results: Results): [B, BackendResults][] {
  return Object.entries(results.backends) as [B, BackendResults][];
}

function sendPair(points: SendPoint[] | undefined, c: number, talks: number) {
  const t = points?.find((p) => p.system === "talkhub" && p.concurrency === c && p.talks === talks);
  const r = points?.find((p) => p.system === "raw" && p.concurrency === c && p.talks === talks);
  return { t, r, ratio: t && r ? t.sendsPerSec / r.sendsPerSec : NaN };
}

function fixedPoint(points: FanoutPoint[] | undefined, system: string, r: number, mode = "fixed") {
  return points?.find((p) => p.system === system && p.watchers === r && p.mode === mode);
}

// ------------------------------------------------------------------------------------------
// Targets
// ------------------------------------------------------------------------------------------

interface Target {
  readonly backend: string;
  readonly what: string;
  readonly target: string;
  readonly measured: string;
  readonly met: boolean | undefined;
  readonly miss: string;
}

function targets(results: Results): Target[] {
  const out: Target[] = [];
  for (const [b, r] of entries(results)) {
    const name = backendName[b];
    if (r.send) {
      const { t, r: raw, ratio } = sendPair(r.send, 32, 100);
      const met = Number.isNaN(ratio) ? undefined : ratio >= 0.8;
      out.push({
        backend: name,
        what: "send throughput, 100 talks, C=32, vs raw insert",
        target: ">= 0.80x raw",
        measured: `${fmt(t?.sendsPerSec, 0)} vs ${fmt(raw?.sendsPerSec, 0)} sends/s = ${fmt(ratio, 2)}x`,
        met,
        miss: met === false ? `${fmt(0.8 - ratio, 2)}x short (needs ${fmt(0.8 * (raw?.sendsPerSec ?? 0), 0)}/s, ${fmt((100 * (0.8 * (raw?.sendsPerSec ?? 0) - (t?.sendsPerSec ?? 0))) / (0.8 * (raw?.sendsPerSec ?? 1)), 0)}% below)` : "",
      });
    }
    const fan = [...(r.fanout ?? [])];
    for (const [watchers, limit] of [
      [10, 10],
      [50, 25],
    ] as const) {
      const p = fixedPoint(fan, "talkhub", watchers);
      if (p === undefined) continue;
      const met = p.delivery.p99 <= limit && p.lost === 0 && p.duplicated === 0;
      out.push({
        backend: name,
        what: `fan-out at 1,000 msg/s to ${watchers} watchers: delivery p99 (lost/dup 0)`,
        target: `<= ${limit} ms`,
        measured: `p99 ${fmt(p.delivery.p99, 2)} ms (achieved ${p.sendRate} msg/s), lost ${p.lost}, dup ${p.duplicated}`,
        met,
        miss: met ? "" : `${p.delivery.p99 > limit ? `+${fmt(p.delivery.p99 - limit, 1)} ms (${fmt(p.delivery.p99 / limit, 1)}x the target)` : ""}${p.lost || p.duplicated ? ` lost ${p.lost} dup ${p.duplicated}` : ""}`,
      });
    }
    const lossy = fan.filter((p) => p.system === "talkhub" && (p.lost > 0 || p.duplicated > 0));
    if (fan.length > 0) {
      out.push({
        backend: name,
        what: "fan-out: lost and duplicated deliveries, every point",
        target: "0 and 0",
        measured: lossy.length === 0 ? "0 and 0" : lossy.map((p) => `R=${p.watchers} ${p.mode}: lost ${p.lost}, dup ${p.duplicated}`).join("; "),
        met: lossy.length === 0,
        miss: lossy.length === 0 ? "" : `${lossy.reduce((a, p) => a + p.lost, 0)} lost, ${lossy.reduce((a, p) => a + p.duplicated, 0)} duplicated`,
      });
    }
    if (r.history) {
      const worst = r.history.cases.reduce((a, c) => (c.talkhub.p99 > a.talkhub.p99 ? c : a));
      const met = worst.talkhub.p99 < 5;
      out.push({
        backend: name,
        what: `history pages p99 at any depth (worst: ${worst.name})`,
        target: "< 5 ms",
        measured: r.history.cases.map((c) => `${fmt(c.talkhub.p99, 2)}`).join(" / ") + " ms",
        met,
        miss: met ? "" : `worst +${fmt(worst.talkhub.p99 - 5, 2)} ms (${fmt(worst.talkhub.p99 / 5, 1)}x)`,
      });
    }
    const grpc = r.capacity?.find((c) => c.kind === "grpc");
    if (grpc) {
      const met = grpc.rssPerSubscription < 10_240;
      out.push({
        backend: name,
        what: `idle WatchTalk streams (${grpc.subscriptions.toLocaleString("en-US")}): server RSS per stream`,
        target: "< 10 KiB",
        measured: `${kib(grpc.rssPerSubscription)} KiB RSS (V8 heap ${kib(grpc.heapPerSubscription)} KiB)`,
        met,
        miss: met ? "" : `+${kib(grpc.rssPerSubscription - 10_240)} KiB (${fmt(grpc.rssPerSubscription / 10_240, 1)}x)`,
      });
    }
  }
  return out;
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
      parts.push(`<text x="${x(v)}" y="${top + rows.length * rowH + 12}" font-size="10" text-anchor="middle">${v >= 1 ? v : v.toFixed(1)}</text>`);
    }
  }
  parts.push(`<text x="${left + plotW / 2}" y="${top + rows.length * rowH + 25}" font-size="10" text-anchor="middle">ms (log scale); dark = p50, light = p99</text>`);
  rows.forEach((row, i) => {
    const y = top + i * rowH;
    const color = palette[groups.indexOf(row.group) % palette.length];
    parts.push(`<text x="${left - 6}" y="${y + 11}" font-size="10" text-anchor="end">${esc(row.label)}</text>`);
    if (Number.isFinite(row.p99)) parts.push(`<rect x="${left}" y="${y + 2}" width="${Math.max(1, x(row.p99) - left)}" height="${rowH - 4}" fill="${color}" fill-opacity="0.35"/>`);
    if (Number.isFinite(row.p50)) parts.push(`<rect x="${left}" y="${y + 2}" width="${Math.max(1, x(row.p50) - left)}" height="${rowH - 4}" fill="${color}"/>`);
    if (Number.isFinite(row.p99)) parts.push(`<text x="${x(row.p99) + 3}" y="${y + 11}" font-size="9">${fmt(row.p50, 2)} / ${fmt(row.p99, 2)}</text>`);
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
      send.push({ label: `${b} ${p.system === "raw" ? "raw insert" : "Talkhub"} C=${p.concurrency}`, p50: p.ack.p50, p99: p.ack.p99, group: `${b}-${p.system}` });
    }
    for (const p of r.fanout ?? []) {
      fan.push({
        label: `${p.system === "nats" ? "NATS core" : b} R=${p.watchers} ${p.mode === "fixed" ? "1,000/s" : "full speed"}`,
        p50: p.delivery.p50,
        p99: p.delivery.p99,
        group: p.system === "nats" ? "nats" : b,
      });
    }
    for (const c of r.history?.cases ?? []) {
      hist.push({ label: `${b} ${c.name}`, p50: c.talkhub.p50, p99: c.talkhub.p99, group: b });
      if (c.raw) hist.push({ label: `${b} raw SQL ${c.name.replace(/^ListMessages /, "")}`, p50: c.raw.p50, p99: c.raw.p99, group: `${b}-raw` });
    }
    for (const c of r.capacity ?? []) {
      fan.push({ label: `${b} 1 msg to ${c.subscriptions} idle ${c.kind === "ws" ? "WebSockets" : "streams"}`, p50: c.delivery.p50, p99: c.delivery.p99, group: `${b}-capacity` });
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

function linePanel(title: string, xLabel: string, yLabel: string, series: { name: string; points: [number, number][] }[], x0: number, w: number, h: number): string {
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
  parts.push(`<line x1="${left}" y1="${top + plotH}" x2="${left + plotW}" y2="${top + plotH}" stroke="#333"/><line x1="${left}" y1="${top}" x2="${left}" y2="${top + plotH}" stroke="#333"/>`);
  for (const v of [...new Set(xs)].sort((a, b) => a - b)) {
    parts.push(`<text x="${px(v)}" y="${top + plotH + 14}" font-size="10" text-anchor="middle">${v.toLocaleString("en-US")}</text>`);
  }
  for (let i = 0; i <= 4; i++) {
    const v = (yHi * i) / 4;
    parts.push(`<line x1="${left}" y1="${py(v)}" x2="${left + plotW}" y2="${py(v)}" stroke="#eee"/><text x="${left - 4}" y="${py(v) + 3}" font-size="10" text-anchor="end">${fmt(v, v < 10 ? 1 : 0)}</text>`);
  }
  parts.push(`<text x="${left + plotW / 2}" y="${top + plotH + 30}" font-size="11" text-anchor="middle">${esc(xLabel)}</text>`);
  parts.push(`<text x="${x0 + 14}" y="${top + plotH / 2}" font-size="11" text-anchor="middle" transform="rotate(-90 ${x0 + 14} ${top + plotH / 2})">${esc(yLabel)}</text>`);
  series.forEach((s, i) => {
    const color = palette[i % palette.length];
    const pts = s.points.filter((p) => Number.isFinite(p[1])).sort((a, b) => a[0] - b[0]);
    parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.map((p) => `${px(p[0])},${py(p[1])}`).join(" ")}"/>`);
    for (const p of pts) parts.push(`<circle cx="${px(p[0])}" cy="${py(p[1])}" r="3" fill="${color}"/>`);
    parts.push(`<text x="${left + 10}" y="${top + 14 + i * 14}" font-size="11" fill="${color}">${esc(s.name)}</text>`);
  });
  return parts.join("\n");
}

function scaleSvg(results: Results): string {
  const talkSeries: { name: string; points: [number, number][] }[] = [];
  const watcherSeries: { name: string; points: [number, number][] }[] = [];
  for (const [b, r] of entries(results)) {
    if (r.scale?.talks.length) talkSeries.push({ name: `${backendName[b]} C=32`, points: r.scale.talks.map((p) => [p.talks, p.sendsPerSec]) });
    const fixed = [...(r.fanout ?? []), ...(r.scale?.watchers ?? [])].filter((p) => p.system === "talkhub" && p.mode === "fixed");
    if (fixed.length) watcherSeries.push({ name: `${backendName[b]} p99`, points: fixed.map((p) => [p.watchers, p.delivery.p99]) });
  }
  const nats = entries(results).flatMap(([, r]) => (r.fanout ?? []).filter((p) => p.system === "nats" && p.mode === "fixed"));
  if (nats.length) watcherSeries.push({ name: "NATS core p99", points: nats.map((p) => [p.watchers, p.delivery.p99]) });
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="1000" height="380" font-family="sans-serif">\n<rect width="100%" height="100%" fill="white"/>\n` +
    linePanel("Send throughput as talks grow", "talks the sends spread over (log)", "acknowledged sends/s", talkSeries, 0, 500, 380) +
    "\n" +
    linePanel("Delivery p99 at 1,000 msg/s as watchers grow", "watchers on one talk (log)", "delivery p99, ms", watcherSeries, 500, 500, 380) +
    "\n</svg>\n"
  );
}

// ------------------------------------------------------------------------------------------
// Markdown
// ------------------------------------------------------------------------------------------

function table(header: string[], rows: (string | number)[][]): string {
  return [`| ${header.join(" | ")} |`, `|${header.map(() => "---").join("|")}|`, ...rows.map((r) => `| ${r.join(" | ")} |`)].join("\n");
}

function markdown(results: Results, svgLatency: string, svgScale: string): string {
  const env = results.environment;
  const lines: string[] = [];
  lines.push(`# Talkhub benchmarks ${results.date}`);
  lines.push("");
  lines.push(
    `Run ${results.startedAt} -> ${results.finishedAt} (${results.durationS} s)${results.quick ? ", **--quick** (short points, smaller data; indicative only)" : ""}. ` +
      `Node ${env["node"]}, ${env["cpus"]} cores (${env["cpuModel"]}), ${env["memoryGiB"]} GiB. Load average at start ${JSON.stringify(env["loadAvgAtStart"])}, at end ${JSON.stringify(env["loadAvgAtEnd"])}.`,
  );
  lines.push("");
  lines.push(
    "**How it was measured.** The server under test runs as a child process (`node --import tsx src/main.ts`, `TALKHUB_LOG_LEVEL=warn`, default DB pool of 10, " +
      "Postgres at 127.0.0.1:5432 with NATS at 127.0.0.1:4222, or the embedded PGlite in a temp data dir with the in-process bus); the load generators run in the bench process, " +
      "and the fan-out/capacity watchers in two forked watcher processes. gRPC load and watchers use the bench's lean HTTP/2 transport (`bench/lean-transport.ts`), as the baselines use lean clients (`pg`, the NATS client): " +
      "whatever a client spends is taken from the two cores the system under test runs on. **The machine has 2 cores**: the server, Postgres, NATS, the load generators and the watchers all share them, " +
      "so throughput is CPU-bound for every system and latency includes scheduling of the client side too. The machine is shared with other work (see the load averages above), which adds noise. " +
      "Talkhub and its baseline are measured back to back in the same run, point by point; ratios compare those pairs. Latencies are nearest-rank percentiles of every sample; throughput is acknowledged operations over the measured window.",
  );
  lines.push("");
  if (results.errors.length > 0) {
    lines.push("## Errors");
    lines.push("");
    for (const e of results.errors) lines.push("```\n" + e + "\n```");
    lines.push("");
  }
  lines.push("## Targets");
  lines.push("");
  const ts = targets(results);
  lines.push(
    table(
      ["backend", "what", "target", "measured", "met", "missed by"],
      ts.map((t) => [t.backend, t.what, t.target, t.measured, t.met === undefined ? "n/a" : t.met ? "yes" : "**no**", t.miss]),
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
      lines.push(`### 1. Send (gRPC SendMessage vs raw insert: ${r.rawLabel ?? ""})`);
      lines.push("");
      const rows: (string | number)[][] = [];
      for (const talks of [...new Set(r.send.map((p) => p.talks))]) {
        for (const c of [...new Set(r.send.map((p) => p.concurrency))]) {
          const { t, r: raw, ratio } = sendPair(r.send, c, talks);
          if (!t || !raw) continue;
          rows.push([talks === 1 ? "one talk" : `${talks} talks`, c, fmt(t.sendsPerSec, 0), `${fmt(t.ack.p50, 2)} / ${fmt(t.ack.p99, 2)}`, fmt(raw.sendsPerSec, 0), `${fmt(raw.ack.p50, 2)} / ${fmt(raw.ack.p99, 2)}`, `${fmt(ratio, 2)}x`, t.failed ? `${t.failed} failed` : ""]);
        }
      }
      lines.push(table(["spread", "C", "Talkhub sends/s", "ack p50 / p99 ms", "raw inserts/s", "raw p50 / p99 ms", "ratio", ""], rows));
      lines.push("");
    }
    if (r.fanout) {
      lines.push("### 2. Fan-out (WatchTalk streams vs NATS core subscriptions)");
      lines.push("");
      lines.push(
        table(
          ["system", "R", "load", "sent (msg/s)", "delivery p50 / p99 / max ms", "deliveries/s", "lost", "dup", "notes"],
          r.fanout.map((p) => [
            p.system === "nats" ? "NATS core" : "Talkhub",
            p.watchers,
            p.mode === "fixed" ? `${p.targetRate}/s` : "full speed (8 senders)",
            `${p.sent} (${p.sendRate}/s)`,
            `${fmt(p.delivery.p50, 2)} / ${fmt(p.delivery.p99, 2)} / ${fmt(p.delivery.max, 1)}`,
            fmt(p.deliveriesPerSec, 0),
            p.lost,
            p.duplicated,
            p.notes.join("; ").slice(0, 200),
          ]),
        ),
      );
      lines.push("");
      for (const R of [...new Set(r.fanout.map((p) => p.watchers))]) {
        const t = fixedPoint(r.fanout, "talkhub", R);
        const n = fixedPoint(r.fanout, "nats", R) ?? fixedPoint(results.backends.postgres?.fanout, "nats", R);
        if (t && n) lines.push(`- R=${R} at 1,000 msg/s: Talkhub delivery p50 ${fmt(t.delivery.p50, 2)} ms vs NATS core ${fmt(n.delivery.p50, 2)} ms (${fmt(t.delivery.p50 / n.delivery.p50, 1)}x); p99 ${fmt(t.delivery.p99, 2)} vs ${fmt(n.delivery.p99, 2)} ms (${fmt(t.delivery.p99 / n.delivery.p99, 1)}x).`);
      }
      lines.push("");
    }
    if (r.history) {
      const h = r.history;
      lines.push(`### 3. History (${h.messages.toLocaleString("en-US")} messages in one talk, agent in ${h.talks.toLocaleString("en-US")} talks)`);
      lines.push("");
      lines.push(
        table(
          ["call", "depth", "Talkhub p50 / p99 / max ms", "raw SQL p50 / p99 ms", "ratio p50"],
          h.cases.map((c) => [c.name, c.depth.toLocaleString("en-US"), `${fmt(c.talkhub.p50, 2)} / ${fmt(c.talkhub.p99, 2)} / ${fmt(c.talkhub.max, 1)}`, c.raw ? `${fmt(c.raw.p50, 2)} / ${fmt(c.raw.p99, 2)}` : "n/a", c.raw ? `${fmt(c.talkhub.p50 / c.raw.p50, 1)}x` : ""]),
        ),
      );
      const first = h.cases[0];
      const deepest = h.cases.filter((c) => c.name.startsWith("ListMessages")).at(-1);
      if (first && deepest) lines.push(`\nDepth cost: ListMessages p50 at depth ${deepest.depth.toLocaleString("en-US")} is ${fmt(deepest.talkhub.p50 / first.talkhub.p50, 2)}x the first page (keyset on (chat_id, seq); the deepest token is built by the bench in the service's token format, the 10,000-deep one by paging).`);
      lines.push("");
    }
    if (r.capacity) {
      lines.push("### 4. Capacity (idle subscriptions on one fresh server process)");
      lines.push("");
      lines.push(
        table(
          ["kind", "count", "open time ms", "server RSS before -> after MiB", "RSS per sub KiB", "V8 heap per sub KiB", "1 message to all: p50 / p99 / max ms", "lost", "notes"],
          r.capacity.map((c) => [c.kind === "grpc" ? "WatchTalk (gRPC, 500 per HTTP/2 connection)" : "WebSocket /v1.0/ws", c.subscriptions, fmt(c.openMs, 0), `${fmt(c.rssBefore / 2 ** 20)} -> ${fmt(c.rssAfter / 2 ** 20)}`, kib(c.rssPerSubscription), kib(c.heapPerSubscription), `${fmt(c.delivery.p50, 1)} / ${fmt(c.delivery.p99, 1)} / ${fmt(c.delivery.max, 1)}`, c.lost, c.notes.join("; ")]),
        ),
      );
      lines.push("");
    }
    if (r.scale) {
      lines.push("### 5. Scale curves");
      lines.push("");
      lines.push(table(["talks", "sends/s (C=32)", "ack p50 / p99 ms"], r.scale.talks.map((p) => [p.talks.toLocaleString("en-US"), fmt(p.sendsPerSec, 0), `${fmt(p.ack.p50, 2)} / ${fmt(p.ack.p99, 2)}`])));
      lines.push("");
      const fixed = [...(r.fanout ?? []), ...r.scale.watchers].filter((p) => p.system === "talkhub" && p.mode === "fixed").sort((a, b) => a.watchers - b.watchers);
      lines.push(table(["watchers", "achieved msg/s", "delivery p50 / p99 / max ms", "lost", "dup"], fixed.map((p) => [p.watchers, p.sendRate, `${fmt(p.delivery.p50, 2)} / ${fmt(p.delivery.p99, 2)} / ${fmt(p.delivery.max, 1)}`, p.lost, p.duplicated])));
      lines.push("");
    }
    if (r.profile) {
      const p = r.profile;
      lines.push(`### Send-path CPU profile (server child under \`--cpu-prof\`, C=32 over 100 talks; ${fmt(p.totalMs / 1000, 1)} s profiled, ${p.idlePercent}% idle)`);
      lines.push("");
      lines.push("Top self time, % of non-idle samples:");
      lines.push("");
      lines.push(table(["function", "where", "self ms", "%"], p.functions.slice(0, 15).map((f) => [`\`${f.name}\``, f.where, f.selfMs, f.percent])));
      lines.push("");
      lines.push("By package / file:");
      lines.push("");
      lines.push(table(["package or file", "self ms", "%"], p.groups.slice(0, 12).map((g) => [g.name, g.selfMs, g.percent])));
      lines.push("");
    }
  }
  lines.push("## Charts");
  lines.push("");
  lines.push(`- [${results.date}.svg](${results.date}.svg): latency percentiles (p50 dark, p99 light) of sends, fan-out deliveries, capacity deliveries and history pages.`);
  lines.push(`- [${results.date}-scale.svg](${results.date}-scale.svg): the scale curves.`);
  lines.push("");
  lines.push(`![scale curves](${results.date}-scale.svg)`);
  lines.push("");
  void svgLatency;
  void svgScale;
  return lines.join("\n");
}

export async function writeReport(dir: string, results: Results): Promise<string[]> {
  const base = join(dir, results.date);
  const svgLatency = latencySvg(results);
  const svgScale = scaleSvg(results);
  await writeFile(`${base}.json`, JSON.stringify(results, null, 2) + "\n");
  await writeFile(`${base}.svg`, svgLatency);
  await writeFile(`${base}-scale.svg`, svgScale);
  await writeFile(`${base}.md`, markdown(results, svgLatency, svgScale));
  return [`${base}.json`, `${base}.md`, `${base}.svg`, `${base}-scale.svg`];
}
