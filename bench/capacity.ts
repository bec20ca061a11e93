/**
 * Capacity: many idle WatchTalk streams (over several HTTP/2 connections) and WebSocket
 * subscribers on one fresh server process: memory per subscription that opened (server RSS and
 * V8 heap after a forced full GC, before and after, divided by the subscriptions whose first
 * response arrived; refused ones are reported apart) and the delivery latency of one message to
 * all of them.
 */
import { randomBytes } from "node:crypto";
import type { BenchAgent, BenchDatabase, Server } from "./server.js";
import { grpcClients, startServer } from "./server.js";
import type { WatcherPool } from "./fanout.js";
import { nowAbs, round, sleep, summarize, type Summary } from "./stats.js";

export interface CapacityPoint {
  readonly kind: "grpc" | "ws";
  /** Subscriptions asked for. */
  readonly subscriptions: number;
  /** Subscriptions whose first response (gRPC) or subscribe ack (WebSocket) arrived. */
  readonly opened: number;
  /** Subscriptions refused (an error before their first response). */
  readonly refused: number;
  /** Neither opened nor refused within the wait. */
  readonly pending: number;
  readonly openMs: number;
  readonly rssBefore: number;
  readonly rssAfter: number;
  readonly heapBefore: number;
  readonly heapAfter: number;
  readonly rssPerSubscription: number;
  readonly heapPerSubscription: number;
  readonly delivery: Summary;
  readonly lost: number;
  readonly duplicated: number;
  readonly notes: string[];
}

/** Memory after a quiet moment and a forced full GC in the server. */
async function settle(server: Server, ms: number) {
  await sleep(ms);
  const m = await server.memoryAfterGc();
  return { rss: m.rss, heap: m.heapUsed };
}

export async function runCapacity(
  database: BenchDatabase,
  secret: string,
  agent: BenchAgent,
  pool: WatcherPool,
  counts: { grpc: number; ws: number },
  log: (line: string) => void,
  /** Use this running server instead of a fresh one per kind (--quick). */
  shared?: Server,
): Promise<CapacityPoint[]> {
  const points: CapacityPoint[] = [];
  for (const kind of ["grpc", "ws"] as const) {
    const total = counts[kind];
    const server = shared ?? (await startServer({ database, secret }));
    const clients = grpcClients(server.url, agent.token);
    try {
      const talk = (await clients.talks.createTalk({ type: "group", name: `capacity ${kind}` })).talk!;
      const open = (count: number) =>
        pool.open(
          {
            kind,
            url: server.url,
            token: agent.token,
            agentId: agent.id,
            chatId: talk.id,
            afterSeq: Number(talk.lastSeq),
            subject: "",
            perConnection: 500,
          },
          count,
        );
      // Warm the server's code paths (and the connection setup) before the baseline reading.
      await pool.reset("warm", 1);
      await open(Math.min(200, total));
      if (kind === "grpc") await clients.messages.sendMessage({ chatId: talk.id, text: "probe" });
      await pool.ready(30_000);
      await pool.closeAll();
      await sleep(shared ? 100 : 500);
      const before = await settle(server, shared ? 500 : 2_000);
      const run = randomBytes(4).toString("hex");
      await pool.reset(run, 1);
      const openStart = nowAbs();
      const opened = await open(total);
      // gRPC streams count as opened once their first response arrived: a probe message
      // reaches them all.
      if (kind === "grpc") await clients.messages.sendMessage({ chatId: talk.id, text: "probe" });
      const live = await pool.ready(60_000);
      const openMs = nowAbs() - openStart;
      const after = await settle(server, shared ? 500 : 2_000);
      const t = nowAbs();
      await clients.messages.sendMessage({ chatId: talk.id, text: `b:${run}:0:${t}` });
      const got = await pool.collect(Uint8Array.of(1), 3_000, 30_000);
      await pool.closeAll();
      const notes: string[] = [];
      if (opened.streamErrors > 0) notes.push(`${opened.streamErrors} errors while opening`);
      if (got.streamErrors > 0) notes.push(`${got.streamErrors} subscription errors: ${got.errorSamples[0] ?? ""}`);
      // Only subscriptions that opened hold memory in the server: they are what it is divided by.
      const ok = live.opened;
      const point: CapacityPoint = {
        kind,
        subscriptions: total,
        opened: ok,
        refused: live.refused,
        pending: total - live.opened - live.refused,
        openMs: round(openMs, 0),
        rssBefore: before.rss,
        rssAfter: after.rss,
        heapBefore: before.heap,
        heapAfter: after.heap,
        rssPerSubscription: ok === 0 ? NaN : round((after.rss - before.rss) / ok, 0),
        heapPerSubscription: ok === 0 ? NaN : round((after.heap - before.heap) / ok, 0),
        delivery: summarize(got.latencies),
        lost: got.lost,
        duplicated: got.duplicated,
        notes,
      };
      points.push(point);
      log(
        `  capacity ${database.backend} ${kind} x${total}: ${ok} opened, ${live.refused} refused, in ${point.openMs} ms, RSS ${round(before.rss / 2 ** 20)} -> ${round(after.rss / 2 ** 20)} MiB ` +
          `(${round(point.rssPerSubscription / 1024, 2)} KiB each), heap ${round(point.heapPerSubscription / 1024, 2)} KiB each; ` +
          `one message to all: p50 ${point.delivery.p50} p99 ${point.delivery.p99} max ${point.delivery.max} ms, lost ${got.lost}${notes.length ? ` [${notes.join("; ")}]` : ""}`,
      );
    } finally {
      clients.close();
      if (shared === undefined) await server.stop();
    }
  }
  return points;
}
