/**
 * Send: C concurrent senders over gRPC into one talk and spread over 100 talks: acknowledged
 * sends/s and ack latency. Baseline: the same message row inserted by a plain client with the
 * same concurrency, one transaction per row, into a copy of the messages table (bench_messages,
 * LIKE messages INCLUDING ALL: same columns and indexes, no foreign keys).
 *   Postgres: `pg` (node-postgres) into the bench database, pool of min(C, 10) connections (the
 *             server's own DB pool is 10; max_connections is 100 and shared with other work).
 *   PGlite:   an in-process PGlite data dir in the bench process (PGlite runs one query at a time).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import pg from "pg";
import { uuidv7 } from "uuidv7";
import { openDatabase } from "../src/store/database.js";
import { fullSpeed, type LoadResult } from "./fanout.js";
import type { BenchAgent, BenchDatabase, Clients, Server } from "./server.js";
import { grpcClients } from "./server.js";
import { round, type Summary } from "./stats.js";

export interface SendPoint {
  readonly system: "talkhub" | "raw";
  readonly concurrency: number;
  readonly talks: number;
  readonly sends: number;
  readonly sendsPerSec: number;
  readonly ack: Summary;
  readonly failed: number;
  readonly errors: string[];
}

export interface SendOptions {
  readonly concurrencies: readonly number[];
  readonly spreads: readonly number[];
  readonly durationMs: number;
  readonly warmupMs: number;
}

const insertSql =
  "INSERT INTO bench_messages (id, customer_id, chat_id, seq, parent_id, owner_type, owner_id, type, text, medias, client_message_id, tm_create, tm_update, tm_delete) " +
  "VALUES ($1, $2, $3, $4, NULL, 'agent', $5, 'normal', $6, '[]'::jsonb, NULL, $7, $7, NULL)";

/** A raw inserter: one transaction per row, the same row Talkhub writes for a message. */
export interface RawInserter {
  readonly label: string;
  insert(params: unknown[], concurrency: number): Promise<void>;
  setConcurrency(concurrency: number): Promise<void>;
  close(): Promise<void>;
}

export async function rawInserter(database: BenchDatabase): Promise<RawInserter> {
  const createCopy = "CREATE TABLE IF NOT EXISTS bench_messages (LIKE messages INCLUDING ALL)";
  if (database.backend === "postgres") {
    let pool: pg.Pool | undefined;
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    await admin.query(createCopy);
    await admin.end();
    return {
      label: "pg (node-postgres), BEGIN; INSERT; COMMIT per row, pool of min(C, 10)",
      setConcurrency: async (concurrency) => {
        await pool?.end();
        pool = new pg.Pool({ connectionString: database.url, max: Math.min(concurrency, 10) });
        pool.on("error", () => undefined);
      },
      insert: async (params) => {
        const client = await pool!.connect();
        try {
          await client.query("BEGIN");
          await client.query(insertSql, params);
          await client.query("COMMIT");
        } catch (error) {
          await client.query("ROLLBACK").catch(() => undefined);
          throw error;
        } finally {
          client.release();
        }
      },
      close: async () => {
        await pool?.end();
      },
    };
  }
  const dir = await mkdtemp(join(tmpdir(), "talkhub-bench-raw-"));
  const migrated = await openDatabase({ kind: "pglite", dataDir: dir });
  await migrated.close();
  const lite = new PGlite(`${dir}/pgdata`);
  await lite.waitReady;
  await lite.exec(createCopy);
  return {
    label: "in-process PGlite (file-backed), transaction per row",
    setConcurrency: async () => undefined,
    insert: async (params) => {
      await lite.transaction(async (tx) => {
        await tx.query(insertSql, params);
      });
    },
    close: async () => {
      await lite.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function summarizeLoad(system: "talkhub" | "raw", concurrency: number, talks: number, load: LoadResult): SendPoint {
  const seconds = (load.endAt - load.startAt) / 1000;
  return {
    system,
    concurrency,
    talks,
    sends: load.ackedCount,
    sendsPerSec: round(load.ackedCount / seconds, 0),
    ack: load.ack,
    failed: load.failed,
    errors: load.errors,
  };
}

/** Talkhub sends at concurrency C into `talkIds` (round robin), over 4 HTTP/2 connections. */
export async function talkhubSends(
  connections: Clients[],
  talkIds: readonly string[],
  concurrency: number,
  durationMs: number,
  warmupMs: number,
): Promise<SendPoint> {
  const send = (n: number) =>
    connections[n % connections.length]!.messages.sendMessage({ chatId: talkIds[n % talkIds.length]!, text: `bench send ${n}` }).then(() => undefined);
  if (warmupMs > 0) await fullSpeed(concurrency, warmupMs, 10_000_000, send);
  return summarizeLoad("talkhub", concurrency, talkIds.length, await fullSpeed(concurrency, durationMs, 10_000_000, send));
}

let rawSeq = 0;

export async function rawSends(
  raw: RawInserter,
  agent: BenchAgent,
  talkIds: readonly string[],
  concurrency: number,
  durationMs: number,
  warmupMs: number,
): Promise<SendPoint> {
  await raw.setConcurrency(concurrency);
  const send = (n: number) => {
    const chatId = talkIds[n % talkIds.length]!;
    // Unique (chat_id, seq) across every point of the run: seqs far above the seeded ones.
    const seq = 1_000_000_000 + rawSeq++;
    return raw.insert([uuidv7(), agent.customerId, chatId, seq, agent.id, `bench send ${n}`, new Date()], concurrency);
  };
  if (warmupMs > 0) await fullSpeed(concurrency, warmupMs, 10_000_000, send);
  return summarizeLoad("raw", concurrency, talkIds.length, await fullSpeed(concurrency, durationMs, 10_000_000, send));
}

export async function runSend(
  server: Server,
  database: BenchDatabase,
  raw: RawInserter,
  agent: BenchAgent,
  talkIds: readonly string[],
  options: SendOptions,
  log: (line: string) => void,
): Promise<SendPoint[]> {
  const connections = Array.from({ length: 4 }, () => grpcClients(server.url, agent.token));
  const points: SendPoint[] = [];
  try {
    for (const talks of options.spreads) {
      const ids = talkIds.slice(0, talks);
      for (const c of options.concurrencies) {
        const t = await talkhubSends(connections, ids, c, options.durationMs, options.warmupMs);
        const r = await rawSends(raw, agent, ids, c, options.durationMs, options.warmupMs);
        points.push(t, r);
        log(
          `  send ${server.backend} C=${c} talks=${talks}: talkhub ${t.sendsPerSec}/s (p50 ${t.ack.p50} p99 ${t.ack.p99} ms${t.failed ? `, ${t.failed} failed: ${t.errors[0]}` : ""}) ` +
            `raw ${r.sendsPerSec}/s (p50 ${r.ack.p50} p99 ${r.ack.p99} ms${r.failed ? `, ${r.failed} failed: ${r.errors[0]}` : ""}) ratio ${round(t.sendsPerSec / r.sendsPerSec, 2)}`,
        );
      }
    }
    return points;
  } finally {
    for (const c of connections) c.close();
  }
}
