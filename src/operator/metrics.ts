/**
 * Prometheus metrics (prom-client), in a registry of the service's own so that several services
 * in one process (tests) keep separate counts. Served at /metrics.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export interface PoolStats {
  readonly total: number;
  readonly idle: number;
  readonly waiting: number;
}

export class Metrics {
  readonly registry = new Registry();

  readonly requests = new Counter({
    name: "talkhub_rpc_requests_total",
    help: "RPCs handled, by method and gRPC code (REST calls count under their RPC).",
    labelNames: ["method", "code"] as const,
    registers: [this.registry],
  });

  readonly duration = new Histogram({
    name: "talkhub_rpc_duration_seconds",
    help: "Time to answer a unary RPC, by method.",
    labelNames: ["method"] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  readonly openStreams = new Gauge({
    name: "talkhub_streams_open",
    help: "Server streams open now (WatchTalk, WatchEvents, WebSocket subscriptions), by method.",
    labelNames: ["method"] as const,
    registers: [this.registry],
  });

  readonly sendBatch = new Histogram({
    name: "talkhub_send_batch_size",
    help: "Messages written together by one statement (group commit).",
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
    registers: [this.registry],
  });

  readonly published = new Counter({
    name: "talkhub_events_published_total",
    help: "Committed events handed to the bus.",
    registers: [this.registry],
  });

  readonly delivered = new Counter({
    name: "talkhub_events_delivered_total",
    help: "Events sent down streams to watchers.",
    registers: [this.registry],
  });

  readonly lag = new Histogram({
    name: "talkhub_event_delivery_lag_seconds",
    help: "From an event's commit time to its sending to a watcher.",
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
    registers: [this.registry],
  });

  constructor(poolStats: () => PoolStats | undefined) {
    new Gauge({
      name: "talkhub_db_pool_connections",
      help: "Database pool connections by state (Postgres only).",
      labelNames: ["state"] as const,
      registers: [this.registry],
      collect() {
        const stats = poolStats();
        if (stats === undefined) return;
        this.set({ state: "total" }, stats.total);
        this.set({ state: "idle" }, stats.idle);
        this.set({ state: "waiting" }, stats.waiting);
      },
    });
    // Standard names (process_*, nodejs_*), so that the usual Node.js dashboards and alerts work.
    collectDefaultMetrics({ register: this.registry });
  }

  /**
   * Reports, at each scrape, the stream slots taken in this process and its talk feeds with
   * their listeners: after every stream has ended all three read zero (a leak shows here).
   */
  observeStreams(read: () => { readonly slots: number; readonly feeds: number; readonly listeners: number }): void {
    new Gauge({
      name: "talkhub_stream_slots_open",
      help: "Stream quota slots taken in this process (WatchTalk, WatchEvents, WebSocket subscriptions).",
      registers: [this.registry],
      collect() {
        this.set(read().slots);
      },
    });
    new Gauge({
      name: "talkhub_talk_feeds",
      help: "Talk feeds (one bus subscription each) open in this process, and their listeners (one per stream and talk).",
      labelNames: ["kind"] as const,
      registers: [this.registry],
      collect() {
        const { feeds, listeners } = read();
        this.set({ kind: "feeds" }, feeds);
        this.set({ kind: "listeners" }, listeners);
      },
    });
  }

  /** Records an event sent to a watcher. */
  eventDelivered(committedAt: Date): void {
    this.delivered.inc();
    this.lag.observe(Math.max(0, Date.now() - committedAt.getTime()) / 1000);
  }
}
