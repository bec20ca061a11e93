/**
 * Outside: sends as a team outside would measure them. A plain @grpc/grpc-js client
 * (bench/grpc-js-client.ts) sends N messages into one fresh talk with C in flight, while W
 * WatchTalk watchers, also over grpc-js (in the watcher processes), must each receive every one.
 * Baseline: the raw insert per row of bench/send.ts (one transaction per row; `pg` with a pool of
 * C, or PGlite in the bench process), N rows at the same C. Runs alternate Talkhub, raw, Talkhub,
 * raw... and the report takes medians. CPU per send of every role (bench/cpu.ts) is sampled
 * around each run; a Talkhub run's window ends when the watchers have every acknowledged
 * message, so the fan-out's CPU is in it.
 */
import { randomBytes } from "node:crypto";
import type { CpuMeter } from "./cpu.js";
import { fullSpeed, textOf, type WatcherPool } from "./fanout.js";
import { grpcJsClients, unary, type TalkJson } from "./grpc-js-client.js";
import { rawInsertOne, type RawInserter } from "./send.js";
import type { BenchAgent, Server } from "./server.js";
import { median, round, type Summary } from "./stats.js";

export interface OutsideOptions {
  readonly concurrency: number;
  readonly watchers: number;
  /** Messages per run. */
  readonly messages: number;
  /** Runs of each system, interleaved. */
  readonly runs: number;
  /** Unmeasured sends of each system before the first run. */
  readonly warmup: number;
}

export interface OutsideRun {
  readonly system: "talkhub" | "raw";
  /** Acknowledged sends. */
  readonly sends: number;
  readonly sendsPerSec: number;
  readonly ack: Summary;
  readonly failed: number;
  readonly errors: string[];
  /** CPU ms per acknowledged send of each role (bench/cpu.ts). */
  readonly cpuPerSend: Record<string, number>;
  /** Talkhub: acknowledged messages an opened watcher never received. */
  readonly lost?: number;
  readonly duplicated?: number;
  /** Talkhub: watchers refused before they opened. */
  readonly refused?: number;
}

export interface OutsideResult {
  readonly rawLabel: string;
  readonly runs: OutsideRun[];
  readonly notes: string[];
  /** Set when the workload did not complete; the runs before it are kept. */
  readonly error?: string;
}

export interface OutsideMedians {
  readonly runs: number;
  readonly sendsPerSec: number;
  readonly cpuPerSend: Record<string, number>;
  /** Summed over the runs: each must be 0. */
  readonly failed: number;
  readonly lost: number;
  readonly duplicated: number;
}

/** Medians over a system's runs (each figure on its own), with failures and losses summed. */
export function outsideMedians(result: OutsideResult | undefined, system: OutsideRun["system"]): OutsideMedians | undefined {
  const runs = result?.runs.filter((r) => r.system === system) ?? [];
  if (runs.length === 0) return undefined;
  const roles = Object.keys(runs[0]!.cpuPerSend);
  const sum = (f: (r: OutsideRun) => number | undefined) => runs.reduce((a, r) => a + (f(r) ?? 0), 0);
  return {
    runs: runs.length,
    sendsPerSec: median(runs.map((r) => r.sendsPerSec)),
    cpuPerSend: Object.fromEntries(roles.map((role) => [role, median(runs.map((r) => r.cpuPerSend[role] ?? NaN))])),
    failed: sum((r) => r.failed),
    lost: sum((r) => r.lost),
    duplicated: sum((r) => r.duplicated),
  };
}

const cpuText = (cpu: Record<string, number>) =>
  ["server", "postgres", "nats"]
    .filter((role) => cpu[role] !== undefined)
    .map((role) => `${role} ${cpu[role]}`)
    .join(", ");

export async function runOutside(
  server: Server,
  raw: RawInserter,
  agent: BenchAgent,
  pool: WatcherPool,
  options: OutsideOptions,
  log: (line: string) => void,
  cpu: CpuMeter,
): Promise<OutsideResult> {
  const { concurrency: c, messages: n } = options;
  const label = `outside ${server.backend}`;
  const client = grpcJsClients(server.url, agent.token);
  const runs: OutsideRun[] = [];
  const notes: string[] = [];
  const lastCpu = () => cpu.steps.at(-1)?.perOperationMs ?? {};
  const timing = (load: { ackedCount: number; startAt: number; endAt: number; ack: Summary; failed: number; errors: string[] }) => ({
    sends: load.ackedCount,
    sendsPerSec: round(load.ackedCount / ((load.endAt - load.startAt) / 1000), 0),
    ack: load.ack,
    failed: load.failed,
    errors: load.errors,
  });
  try {
    const { talk } = await unary<{ talk: TalkJson }>(client.talks, "CreateTalk", { type: "group", name: "outside" }, client.metadata);
    const chatId = talk.id;
    const send = (text: string) => unary(client.messages, "SendMessage", { chat_id: chatId, text }, client.metadata).then(() => undefined);
    const insert = rawInsertOne(raw, agent, [chatId], c);
    await raw.setConcurrency(c);

    await pool.reset("warm-up", n);
    await pool.open(
      {
        kind: "grpc-js",
        url: server.url,
        token: agent.token,
        agentId: agent.id,
        chatId,
        afterSeq: Number(talk.last_seq),
        subject: "",
        perConnection: options.watchers,
      },
      options.watchers,
    );
    await send("probe");
    const ready = await pool.ready(30_000);
    if (ready.opened < options.watchers)
      notes.push(`only ${ready.opened} of ${options.watchers} watchers opened (${ready.refused} refused)`);
    // Warm-up texts are not bench messages: the watchers ignore them.
    await fullSpeed(c, Infinity, options.warmup, (i) => send(`warm-up ${i}`));
    await fullSpeed(c, Infinity, options.warmup, insert);

    for (let i = 1; i <= options.runs; i++) {
      const run = randomBytes(4).toString("hex");
      await pool.reset(run, n);
      const { load, got } = await cpu.measure(
        `${label} run ${i}: Talkhub (grpc-js, ${options.watchers} watchers)`,
        "sends",
        async () => {
          const load = await fullSpeed(c, Infinity, n, (k, at) => send(textOf(run, k, at)));
          return { load, got: await pool.collect(load.acked, 3_000, 30_000) };
        },
        (r) => r.load.ackedCount,
      );
      const t: OutsideRun = {
        system: "talkhub",
        ...timing(load),
        cpuPerSend: lastCpu(),
        lost: got.lost,
        duplicated: got.duplicated,
        refused: got.refused,
      };
      if (got.streamErrors > 0) notes.push(`run ${i}: ${got.streamErrors} watchers ended with an error: ${got.errorSamples[0] ?? ""}`);
      const rawLoad = await cpu.measure(
        `${label} run ${i}: raw insert per row`,
        "sends",
        () => fullSpeed(c, Infinity, n, insert),
        (l) => l.ackedCount,
      );
      const r: OutsideRun = { system: "raw", ...timing(rawLoad), cpuPerSend: lastCpu() };
      runs.push(t, r);
      log(
        `  ${label} run ${i}: Talkhub ${t.sendsPerSec}/s (ack p50 ${t.ack.p50} p99 ${t.ack.p99} ms; CPU ms/send ${cpuText(t.cpuPerSend)}; ` +
          `lost ${t.lost} dup ${t.duplicated}${t.failed ? `, ${t.failed} failed: ${t.errors[0]}` : ""}) raw ${r.sendsPerSec}/s (CPU ms/send ${cpuText(r.cpuPerSend)}${r.failed ? `, ${r.failed} failed: ${r.errors[0]}` : ""})`,
      );
    }
    const t = outsideMedians({ rawLabel: raw.label, runs, notes }, "talkhub");
    const r = outsideMedians({ rawLabel: raw.label, runs, notes }, "raw");
    if (t && r)
      log(
        `  ${label} medians of ${t.runs}: Talkhub ${t.sendsPerSec}/s vs raw ${r.sendsPerSec}/s = ${round(t.sendsPerSec / r.sendsPerSec, 2)}x; server CPU ${t.cpuPerSend["server"]} ms/send`,
      );
    return { rawLabel: raw.label, runs, notes };
  } catch (error) {
    const text = String(error instanceof Error ? error.message : error).slice(0, 300);
    log(`  ${label}: DID NOT COMPLETE: ${text}`);
    return { rawLabel: raw.label, runs, notes, error: text };
  } finally {
    await pool.closeAll();
    client.close();
  }
}
