/**
 * Fan-out: R watchers on one talk (WatchTalk streams) while senders push at full speed and at a
 * fixed rate; delivery latency (from each message's scheduled send time to receipt, so a sender
 * held back by a slow service does not hide the delay), achieved rate, deliveries/s, lost,
 * duplicated, refused.
 * Baseline: NATS core pub/sub with R subscriptions on one subject.
 * Watchers live in forked child processes (bench/watchers.ts) so that decoding deliveries does
 * not share an event loop with the senders.
 */
import { fork, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { connect as natsConnect } from "@nats-io/transport-node";
import type { BenchAgent, Clients, Server } from "./server.js";
import { grpcClients, natsUrl, pool as inParallel, stopChild, track } from "./server.js";
import { nowAbs, Samples, sleep, summarize, type Summary } from "./stats.js";
import type { CpuMeter } from "./cpu.js";
import type { CollectReply, Command, OpenCommand } from "./watchers.js";

// ------------------------------------------------------------------------------------------
// Watcher children
// ------------------------------------------------------------------------------------------

export class WatcherPool {
  private constructor(private readonly children: ChildProcess[]) {}

  static async start(count: number): Promise<WatcherPool> {
    const script = fileURLToPath(new URL("./watchers.ts", import.meta.url));
    const children = await Promise.all(
      Array.from({ length: count }, async () => {
        const child = fork(script, [], {
          execArgv: ["--import", "tsx"],
          serialization: "advanced",
          stdio: ["ignore", "inherit", "inherit", "ipc"],
        });
        track(child);
        await new Promise<void>((resolve, reject) => {
          child.once("message", () => resolve());
          child.once("exit", (code) => reject(new Error(`watcher exited with ${code}`)));
        });
        return child;
      }),
    );
    return new WatcherPool(children);
  }

  private request<T>(child: ChildProcess, command: Command, reply: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const onMessage = (message: { op: string; error?: string }) => {
        if (message.op === reply) {
          child.off("message", onMessage);
          resolve(message as T);
        } else if (message.op === "error") {
          child.off("message", onMessage);
          reject(new Error(message.error));
        }
      };
      child.on("message", onMessage);
      child.send(command);
    });
  }

  /** Opens `total` subscriptions, split evenly over the children. */
  async open(command: Omit<OpenCommand, "op" | "count">, total: number): Promise<{ ms: number; streamErrors: number }> {
    const share = (i: number) => Math.floor(total / this.children.length) + (i < total % this.children.length ? 1 : 0);
    const start = nowAbs();
    const replies = await Promise.all(
      this.children.map((child, i) =>
        share(i) === 0
          ? { streamErrors: 0 }
          : this.request<{ streamErrors: number }>(child, { op: "open", ...command, count: share(i) }, "opened"),
      ),
    );
    return { ms: nowAbs() - start, streamErrors: replies.reduce((a, r) => a + r.streamErrors, 0) };
  }

  /**
   * Opens `perTalk` subscriptions on each of talks[from, to), whole talks per child (talk j to
   * child j mod children), each subscription told its talk's index so that the child knows
   * which messages (n mod talks) it is owed.
   */
  async openSpread(
    command: Omit<OpenCommand, "op" | "count" | "chatId" | "afterSeq" | "spread">,
    talks: readonly { chatId: string; afterSeq: number }[],
    perTalk: number,
    from = 0,
    to = talks.length,
  ): Promise<{ streamErrors: number }> {
    const replies = await Promise.all(
      this.children.map((child, i) => {
        const index = Array.from({ length: to - from }, (_, k) => from + k).filter((j) => j % this.children.length === i);
        if (index.length === 0) return { streamErrors: 0 };
        const spread = {
          of: talks.length,
          index,
          chatIds: index.map((j) => talks[j]!.chatId),
          afterSeqs: index.map((j) => talks[j]!.afterSeq),
        };
        return this.request<{ streamErrors: number }>(
          child,
          { op: "open", ...command, chatId: "", afterSeq: 0, spread, count: index.length * perTalk },
          "opened",
        );
      }),
    );
    return { streamErrors: replies.reduce((a, r) => a + r.streamErrors, 0) };
  }

  /**
   * Waits until every subscription opened (its first response arrived: send a probe first) or
   * was refused; returns how many of each.
   */
  async ready(capMs: number): Promise<{ opened: number; refused: number }> {
    const replies = await Promise.all(
      this.children.map((child) => this.request<{ opened: number; refused: number }>(child, { op: "ready", capMs }, "ready")),
    );
    return { opened: replies.reduce((a, r) => a + r.opened, 0), refused: replies.reduce((a, r) => a + r.refused, 0) };
  }

  /** The watcher processes' PIDs (for CPU accounting). */
  pids(): number[] {
    return this.children.flatMap((child) => (child.pid === undefined ? [] : [child.pid]));
  }

  async reset(run: string, maxN: number): Promise<void> {
    await Promise.all(this.children.map((child) => this.request(child, { op: "reset", run, maxN }, "reset")));
  }

  async collect(acked: Uint8Array, idleMs: number, capMs: number): Promise<CollectReply> {
    const replies = await Promise.all(
      this.children.map((child) => this.request<{ reply: CollectReply }>(child, { op: "collect", acked, idleMs, capMs }, "collected")),
    );
    const latencies = new Float64Array(replies.reduce((a, r) => a + r.reply.latencies.length, 0));
    let offset = 0;
    for (const { reply } of replies) {
      latencies.set(reply.latencies, offset);
      offset += reply.latencies.length;
    }
    return {
      latencies,
      lost: replies.reduce((a, r) => a + r.reply.lost, 0),
      refused: replies.reduce((a, r) => a + r.reply.refused, 0),
      duplicated: replies.reduce((a, r) => a + r.reply.duplicated, 0),
      delivered: replies.reduce((a, r) => a + r.reply.delivered, 0),
      expected: replies.reduce((a, r) => a + r.reply.expected, 0),
      firstAt: Math.min(...replies.map((r) => r.reply.firstAt)),
      lastAt: Math.max(...replies.map((r) => r.reply.lastAt)),
      streamErrors: replies.reduce((a, r) => a + r.reply.streamErrors, 0),
      resumes: replies.reduce((a, r) => a + r.reply.resumes, 0),
      errorSamples: replies.flatMap((r) => r.reply.errorSamples).slice(0, 5),
    };
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.children.map((child) => this.request(child, { op: "close" }, "closed")));
  }

  async stop(): Promise<void> {
    await Promise.all(this.children.map((child) => stopChild(child, 3_000)));
  }
}

// ------------------------------------------------------------------------------------------
// Load shapes
// ------------------------------------------------------------------------------------------

export interface LoadResult {
  readonly acked: Uint8Array;
  /** Messages the load meant to send (fixed rate: rate x window). */
  readonly scheduled: number;
  /** Scheduled messages never sent: the window (and its grace) ended first. */
  readonly unsent: number;
  readonly ackedCount: number;
  readonly failed: number;
  readonly ack: Summary;
  readonly startAt: number;
  readonly endAt: number;
  readonly errors: string[];
}

/** Sends message n; `scheduledAt` (epoch ms) is when it was due, which latency is measured from. */
export type SendOne = (n: number, scheduledAt: number) => Promise<void>;

function tracker(maxN: number) {
  const acked = new Uint8Array(maxN);
  const ack = new Samples();
  const errors: string[] = [];
  let failed = 0;
  let ackedCount = 0;
  return {
    async one(send: SendOne, n: number, scheduledAt: number) {
      try {
        await send(n, scheduledAt);
        ack.push(nowAbs() - scheduledAt);
        acked[n] = 1;
        ackedCount++;
      } catch (error) {
        failed++;
        if (errors.length < 5) errors.push(String(error).slice(0, 300));
      }
    },
    result(startAt: number, scheduled: number, sent: number): LoadResult {
      return {
        acked,
        scheduled,
        unsent: scheduled - sent,
        ackedCount,
        failed,
        ack: summarize(ack.values()),
        startAt,
        endAt: nowAbs(),
        errors,
      };
    },
  };
}

/**
 * Sends message n at start + n/rate, with at most maxInFlight unacknowledged. Latency (ack and
 * delivery) counts from the scheduled time, so a send that waits for an in-flight slot or for a
 * busy event loop is charged its wait (no coordinated omission).
 */
export async function fixedRate(rate: number, total: number, send: SendOne, maxInFlight = 512): Promise<LoadResult> {
  const t = tracker(total);
  const pending = new Set<Promise<void>>();
  const start = nowAbs();
  // Stop scheduling once the window (plus half again for a backlog) is over: a service that
  // cannot keep the rate shows as a lower achieved rate instead of a run without end.
  const windowMs = (total * 1000) / rate;
  let sent = 0;
  for (let n = 0; n < total; n++) {
    if (nowAbs() - start > windowMs * 1.5 + 200) break;
    const due = start + (n * 1000) / rate;
    let wait = due - nowAbs();
    if (wait > 1.5) await sleep(wait - 1);
    while ((wait = due - nowAbs()) > 0) await new Promise((r) => setImmediate(r));
    while (pending.size >= maxInFlight) await Promise.race(pending);
    const p: Promise<void> = t.one(send, n, due).then(() => {
      pending.delete(p);
    });
    pending.add(p);
    sent++;
  }
  await Promise.all(pending);
  return t.result(start, total, sent);
}

/** `concurrency` loops sending back to back for durationMs (or until maxN messages). */
export async function fullSpeed(concurrency: number, durationMs: number, maxN: number, send: SendOne): Promise<LoadResult> {
  const t = tracker(maxN);
  const start = nowAbs();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      // Closed loop: each message is due when its sender is free to send it.
      while (nowAbs() - start < durationMs && next < maxN) await t.one(send, next++, nowAbs());
    }),
  );
  return t.result(start, next, next);
}

// ------------------------------------------------------------------------------------------
// The workload
// ------------------------------------------------------------------------------------------

export interface FanoutPoint {
  readonly system: "talkhub" | "nats";
  /** Watchers on each talk. */
  readonly watchers: number;
  /** Talks the messages are spread over (round robin); 1 but for the many-talk targets. */
  readonly talks: number;
  readonly mode: "full" | "fixed";
  readonly targetRate: number | null;
  /** Messages the load meant to send (full speed: as many as it managed). */
  readonly scheduled: number;
  readonly sent: number;
  /** Acknowledged messages per second over the load (fixed rate: judged against targetRate). */
  readonly sendRate: number;
  readonly delivery: Summary;
  readonly deliveriesPerSec: number;
  readonly delivered: number;
  readonly expected: number;
  readonly lost: number;
  readonly duplicated: number;
  /** Subscriptions refused before they opened. */
  readonly refused: number;
  readonly streamErrors: number;
  readonly failedSends: number;
  readonly ack: Summary;
  readonly notes: string[];
  /** CPU ms the server process spent over the load and its delivery (the CPU table's step). */
  readonly serverCpuMs?: number;
  /** Set when the point did not complete; the figures above are then zero. */
  readonly error?: string;
}

export interface FanoutOptions {
  readonly watchers: readonly number[];
  readonly durationMs: number;
  readonly fixedRate: number;
  readonly fullConcurrency: number;
  /** Bounds R x messages per point so the clients can keep up and the run stays short. */
  readonly deliveryBudget: number;
  readonly modes: readonly ("full" | "fixed")[];
}

/**
 * A fixed-rate point of its own beside the 1,000 msg/s ones: `watchers` on each of `talks`
 * talks, `rate` messages/s spread round robin over the talks for `durationMs`.
 */
export interface FanoutTarget {
  readonly talks: number;
  readonly watchers: number;
  readonly rate: number;
  readonly durationMs: number;
}

/** A point's load as measure() runs it. */
interface Shape {
  readonly watchers: number;
  readonly talks: number;
  readonly mode: "full" | "fixed";
  readonly rate: number;
  readonly durationMs: number;
}

const shapeOf = (watchers: number, mode: "full" | "fixed", options: FanoutOptions): Shape => ({
  watchers,
  talks: 1,
  mode,
  rate: options.fixedRate,
  durationMs: options.durationMs,
});

/** A bench message's text, as the watchers (bench/watchers.ts) parse it. */
export const textOf = (run: string, n: number, scheduledAt: number) => `b:${run}:${n}:${scheduledAt}`;

const empty: Summary = { n: 0, p50: NaN, p90: NaN, p99: NaN, max: NaN, mean: NaN };

/** A point that threw: it stays in the results (and the report) as not completed. */
export function failedPoint(system: "talkhub" | "nats", shape: Shape, error: unknown): FanoutPoint {
  return {
    system,
    watchers: shape.watchers,
    talks: shape.talks,
    mode: shape.mode,
    targetRate: shape.mode === "fixed" ? shape.rate : null,
    scheduled: 0,
    sent: 0,
    sendRate: 0,
    delivery: empty,
    deliveriesPerSec: 0,
    delivered: 0,
    expected: 0,
    lost: 0,
    duplicated: 0,
    refused: 0,
    streamErrors: 0,
    failedSends: 0,
    ack: empty,
    notes: [],
    error: String(error instanceof Error ? error.message : error).slice(0, 300),
  };
}

async function measure(
  pool: WatcherPool,
  cpu: CpuMeter | undefined,
  label: string,
  system: "talkhub" | "nats",
  shape: Shape,
  options: FanoutOptions,
  open: () => Promise<{ streamErrors: number }>,
  send: (run: string) => SendOne,
  probe: () => Promise<void>,
): Promise<FanoutPoint> {
  const { watchers, talks, mode, rate } = shape;
  const subscriptions = watchers * talks;
  const notes: string[] = [];
  const run = randomBytes(4).toString("hex");
  // A message is delivered to the watchers of its one talk.
  const budgetN = Math.max(200, Math.floor(options.deliveryBudget / watchers));
  const total = mode === "fixed" ? Math.min(Math.round((rate * shape.durationMs) / 1000), budgetN) : budgetN;
  await pool.reset(run, total);
  try {
    const openAt = nowAbs();
    await open();
    await probe();
    const ready = await pool.ready(30_000);
    // What a thousand streams and more cost the run before their load starts.
    if (subscriptions >= 1_000)
      notes.push(
        `${ready.opened.toLocaleString("en-US")} subscriptions opened (and probed) in ${((nowAbs() - openAt) / 1000).toFixed(1)} s`,
      );
    if (ready.opened < subscriptions)
      notes.push(`only ${ready.opened} of ${subscriptions} subscriptions opened before the load (${ready.refused} refused)`);
    await sleep(100);
    const loadAndCollect = async () => {
      const load =
        mode === "fixed"
          ? await fixedRate(rate, total, send(run))
          : await fullSpeed(options.fullConcurrency, options.durationMs, total, send(run));
      const got = await pool.collect(load.acked, 3_000, 30_000);
      return { load, got };
    };
    const where = talks === 1 ? `R=${watchers}` : `${talks} talks x R=${watchers}`;
    const { load, got } =
      cpu === undefined
        ? await loadAndCollect()
        : await cpu.measure(
            `fan-out ${label} ${system === "nats" ? "NATS core" : "Talkhub"} ${where} ${mode === "fixed" ? `${rate}/s` : "full speed"}`,
            "deliveries",
            loadAndCollect,
            (r) => r.got.delivered,
          );
    const serverCpuMs = cpu?.steps.at(-1)?.cpuMs["server"];
    if (load.failed > 0) notes.push(`${load.failed} sends failed: ${load.errors[0] ?? ""}`);
    if (load.unsent > 0) notes.push(`${load.unsent} of ${load.scheduled} scheduled messages never sent: the window ran out`);
    if (got.streamErrors > 0) notes.push(`${got.streamErrors} subscriptions ended with an error: ${got.errorSamples[0] ?? ""}`);
    if (got.resumes > 0)
      notes.push(`${got.resumes} times a stream fell 1,000 events behind, was cut off (RESOURCE_EXHAUSTED) and resumed from its last seq`);
    const sendSeconds = (load.endAt - load.startAt) / 1000;
    return {
      system,
      watchers,
      talks,
      mode,
      targetRate: mode === "fixed" ? rate : null,
      scheduled: load.scheduled,
      sent: load.ackedCount,
      sendRate: Math.round(load.ackedCount / sendSeconds),
      delivery: summarize(got.latencies),
      deliveriesPerSec: got.delivered === 0 ? 0 : Math.round(got.delivered / ((got.lastAt - load.startAt) / 1000)),
      delivered: got.delivered,
      expected: got.expected,
      lost: got.lost,
      duplicated: got.duplicated,
      refused: got.refused,
      streamErrors: got.streamErrors,
      failedSends: load.failed,
      ack: load.ack,
      notes,
      ...(serverCpuMs === undefined ? {} : { serverCpuMs }),
    };
  } finally {
    await pool.closeAll();
  }
}

export async function runFanout(
  server: Server,
  agent: BenchAgent,
  pool: WatcherPool,
  options: FanoutOptions,
  log: (line: string) => void,
  cpu?: CpuMeter,
): Promise<FanoutPoint[]> {
  const points: FanoutPoint[] = [];
  const senders: Clients[] = Array.from({ length: 2 }, () => grpcClients(server.url, agent.token));
  const nc = await natsConnect({ servers: natsUrl, name: "talkhub-bench-publisher" });
  // Every configured point ends up in the results: one that throws is kept as not completed.
  const attempt = async (system: "talkhub" | "nats", watchers: number, mode: "full" | "fixed", run: () => Promise<FanoutPoint>) => {
    let point: FanoutPoint;
    try {
      point = await run();
    } catch (error) {
      point = failedPoint(system, shapeOf(watchers, mode, options), error);
    }
    points.push(point);
    log(describe(system === "nats" ? "nats" : server.backend, point));
  };
  // Talkhub: a fresh talk per point.
  const talkhubPoint = async (watchers: number, mode: "full" | "fixed", meter: CpuMeter | undefined) => {
    const talk = (await senders[0]!.talks.createTalk({ type: "group", name: `fanout ${watchers} ${mode}` })).talk!;
    const chatId = talk.id;
    return measure(
      pool,
      meter,
      server.backend,
      "talkhub",
      shapeOf(watchers, mode, options),
      options,
      () =>
        pool.open(
          {
            kind: "grpc",
            url: server.url,
            token: agent.token,
            agentId: agent.id,
            chatId,
            afterSeq: Number(talk.lastSeq),
            subject: "",
            perConnection: 100,
          },
          watchers,
        ),
      (run) => async (n, scheduledAt) => {
        await senders[n % senders.length]!.messages.sendMessage({ chatId, text: textOf(run, n, scheduledAt) });
      },
      async () => {
        await senders[0]!.messages.sendMessage({ chatId, text: "probe" });
      },
    );
  };
  try {
    for (const watchers of options.watchers) {
      for (const mode of options.modes) {
        await attempt("talkhub", watchers, mode, () => talkhubPoint(watchers, mode, cpu));
        // Baseline: NATS core, same R, same load shape (once; it does not depend on the backend).
        if (server.backend === "postgres") {
          await attempt("nats", watchers, mode, () => {
            const subject = `bench${randomBytes(6).toString("hex")}.fanout`;
            return measure(
              pool,
              cpu,
              server.backend,
              "nats",
              shapeOf(watchers, mode, options),
              options,
              () =>
                pool.open(
                  { kind: "nats", url: natsUrl, token: "", agentId: "", chatId: "", afterSeq: 0, subject, perConnection: 100 },
                  watchers,
                ),
              (run) =>
                mode === "fixed"
                  ? async (n, scheduledAt) => nc.publish(subject, textOf(run, n, scheduledAt))
                  : async (n, scheduledAt) => {
                      // Acknowledged like a send: published and flushed (a server round trip).
                      nc.publish(subject, textOf(run, n, scheduledAt));
                      await nc.flush();
                    },
              async () => undefined,
            );
          });
        }
      }
    }
    return points;
  } finally {
    for (const s of senders) s.close();
    await nc.close();
  }
}

/**
 * A setup call (a talk made, a probe sent) tried again when it fails: a thousand of them on a
 * busy machine may meet a pool wait that times out, which is not what the point measures.
 */
async function setUp<T>(call: () => Promise<T>, attempts = 3): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await call();
    } catch (error) {
      if (i >= attempts) throw error;
      await sleep(200 * i);
    }
  }
}

/**
 * The fixed-rate points of their own (FanoutTarget): Talkhub only, each on fresh talks (made
 * here, C=32) with its watchers spread over the watcher processes by whole talks.
 */
export async function runFanoutTargets(
  server: Server,
  agent: BenchAgent,
  pool: WatcherPool,
  targets: readonly FanoutTarget[],
  options: FanoutOptions,
  log: (line: string) => void,
  cpu?: CpuMeter,
): Promise<FanoutPoint[]> {
  const points: FanoutPoint[] = [];
  const senders: Clients[] = Array.from({ length: 2 }, () => grpcClients(server.url, agent.token));
  try {
    for (const target of targets) {
      const shape: Shape = { ...target, mode: "fixed" };
      let point: FanoutPoint;
      try {
        const madeAt = nowAbs();
        const made = await inParallel(target.talks, 16, (i) =>
          setUp(async () => (await senders[i % senders.length]!.talks.createTalk({ type: "group", name: `fanout target ${i}` })).talk!),
        );
        const talks = made.map((t) => ({ chatId: t.id, afterSeq: Number(t.lastSeq) }));
        const madeS = (nowAbs() - madeAt) / 1000;
        point = await measure(
          pool,
          cpu,
          server.backend,
          "talkhub",
          shape,
          options,
          // In waves of about 1,000 streams, each open (its talk's probe event arrived) before the
          // next: clients that come and stay, not ten thousand opening in one instant.
          async () => {
            const wave = Math.max(1, Math.floor(1_000 / target.watchers));
            let streamErrors = 0;
            for (let from = 0; from < talks.length; from += wave) {
              const to = Math.min(talks.length, from + wave);
              streamErrors += (
                await pool.openSpread(
                  { kind: "grpc", url: server.url, token: agent.token, agentId: agent.id, subject: "", perConnection: 100 },
                  talks,
                  target.watchers,
                  from,
                  to,
                )
              ).streamErrors;
              await inParallel(to - from, 16, (i) =>
                setUp(() => senders[i % senders.length]!.messages.sendMessage({ chatId: talks[from + i]!.chatId, text: "probe" })),
              );
              await pool.ready(30_000);
            }
            return { streamErrors };
          },
          (run) => async (n, scheduledAt) => {
            await senders[n % senders.length]!.messages.sendMessage({
              chatId: talks[n % talks.length]!.chatId,
              text: textOf(run, n, scheduledAt),
            });
          },
          // Probed wave by wave as they opened.
          async () => undefined,
        );
        if (target.talks > 1) point.notes.unshift(`${target.talks.toLocaleString("en-US")} talks made in ${madeS.toFixed(1)} s`);
      } catch (error) {
        point = failedPoint("talkhub", shape, error);
      }
      points.push(point);
      log(describe(server.backend, point));
    }
    return points;
  } finally {
    for (const s of senders) s.close();
  }
}

/** A fixed-rate point keeps its rate when it achieves at least this share of it. */
export const rateTolerance = 0.95;

export function describe(label: string, p: FanoutPoint): string {
  const head = `  fanout ${label} ${p.system}${p.talks > 1 ? ` ${p.talks} talks x` : ""} R=${p.watchers} ${p.mode}${p.targetRate ? `@${p.targetRate}/s` : ""}`;
  if (p.error !== undefined) return `${head}: DID NOT COMPLETE: ${p.error}`;
  return (
    `${head}: sent ${p.sent} of ${p.scheduled} (${p.sendRate}/s) ` +
    `delivery p50 ${p.delivery.p50} p99 ${p.delivery.p99} max ${p.delivery.max} ms, ${p.deliveriesPerSec} deliveries/s, ` +
    `lost ${p.lost} dup ${p.duplicated} refused ${p.refused}${p.notes.length ? ` [${p.notes.join("; ")}]` : ""}`
  );
}
