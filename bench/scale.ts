/**
 * Scale curves: send throughput (C=32) as the talks the sends spread over grow 1 -> 10,000, and
 * fan-out delivery latency at a fixed 1,000 msg/s as watchers grow 10 -> 500. The watcher points
 * that the fan-out workload already measured (10, 50, 500) are joined by 25, 100 and 250 here.
 */
import type { FanoutOptions, FanoutPoint, WatcherPool } from "./fanout.js";
import { runFanout } from "./fanout.js";
import type { BenchAgent, Server } from "./server.js";
import { grpcClients } from "./server.js";
import { talkhubSends, type SendPoint } from "./send.js";

export interface ScaleResult {
  readonly talks: SendPoint[];
  readonly watchers: FanoutPoint[];
}

export async function runScale(
  server: Server,
  agent: BenchAgent,
  talkIds: readonly string[],
  pool: WatcherPool,
  options: { talkCounts: readonly number[]; watcherCounts: readonly number[]; durationMs: number; warmupMs: number; fanout: FanoutOptions },
  log: (line: string) => void,
): Promise<ScaleResult> {
  const connections = Array.from({ length: 4 }, () => grpcClients(server.url, agent.token));
  const talks: SendPoint[] = [];
  try {
    for (const count of options.talkCounts) {
      if (count > talkIds.length) continue;
      const point = await talkhubSends(connections, talkIds.slice(0, count), 32, options.durationMs, options.warmupMs);
      talks.push(point);
      log(`  scale ${server.backend} talks=${count} C=32: ${point.sendsPerSec} sends/s (p50 ${point.ack.p50} p99 ${point.ack.p99} ms)`);
    }
  } finally {
    for (const c of connections) c.close();
  }
  const watchers =
    options.watcherCounts.length === 0
      ? []
      : await runFanout(server, agent, pool, { ...options.fanout, watchers: options.watcherCounts, modes: ["fixed"] }, (line) =>
          log(line.replace("  fanout", "  scale")),
        );
  return { talks, watchers: watchers.filter((p) => p.system === "talkhub") };
}
