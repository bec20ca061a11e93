/**
 * Send: C concurrent senders over gRPC into one talk and spread over 100 talks: acknowledged
 * sends/s and ack latency. Two baselines by a plain client with the same concurrency, into copies
 * of the tables (bench_messages, bench_events, bench_talks: LIKE ... INCLUDING ALL, same columns
 * and indexes, no foreign keys):
 *   raw per row:  the message row, one transaction per row;
 *   raw batched:  what Talkhub's group commit writes (message rows, their message_created event
 *                 rows and the talks' head moves) as one multi-row statement per batch, batches
 *                 of the mean size Talkhub reached at the same point (from its
 *                 talkhub_send_batch_size histogram), so the ratio measures Talkhub's own cost.
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
import type { AgentId, CustomerId, MessageId, TalkId } from "../src/domain/model/ids.js";
import type { Message } from "../src/domain/model/model.js";
import { openDatabase } from "../src/store/database.js";
import { eventRow } from "../src/store/event-store.js";
import { messageRow } from "../src/store/message-store.js";
import type { CpuMeter } from "./cpu.js";
import { fullSpeed, type LoadResult } from "./fanout.js";
import type { BenchAgent, BenchDatabase, Clients, Server } from "./server.js";
import { grpcClients } from "./server.js";
import { round, type Summary } from "./stats.js";

export interface SendPoint {
  readonly system: "talkhub" | "raw" | "raw-batched";
  readonly concurrency: number;
  readonly talks: number;
  readonly sends: number;
  readonly sendsPerSec: number;
  readonly ack: Summary;
  readonly failed: number;
  readonly errors: string[];
  /** Mean messages per write statement (Talkhub: its batch histogram; raw batched: its own). */
  readonly meanBatch?: number;
  /** Talkhub: CPU ms of the server process per acknowledged send over the measured window. */
  readonly serverCpuPerSendMs?: number;
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

/**
 * The raw baselines: one transaction per message row, and one multi-row statement per batch of
 * what Talkhub writes for a batch of sends.
 */
export interface RawInserter {
  readonly label: string;
  readonly batchedLabel: string;
  insert(params: unknown[], concurrency: number): Promise<void>;
  /** Runs one statement that writes these messages, their events and their talks' heads. */
  insertBatch(messages: readonly Message[]): Promise<void>;
  setConcurrency(concurrency: number): Promise<void>;
  close(): Promise<void>;
}

const rawPoolMax = 10;

const createCopies = [
  "CREATE TABLE IF NOT EXISTS bench_messages (LIKE messages INCLUDING ALL)",
  "CREATE TABLE IF NOT EXISTS bench_events (LIKE events INCLUDING ALL)",
  "CREATE TABLE IF NOT EXISTS bench_talks (LIKE talks INCLUDING ALL)",
];

/** bench_talks rows for the talks the sends go to (their heads are what the batches move). */
function talkCopies(talkIds: readonly string[], customerId: string): { text: string; values: unknown[] } {
  const rows = talkIds.map(
    (_, i) => `($${i + 2}::uuid, $1::uuid, 'group', 'bench', '', 'active', 1, 1000000000, NULL, now(), now(), NULL, now())`,
  );
  return {
    text: `INSERT INTO bench_talks (id, customer_id, type, name, detail, status, member_count, last_seq, pair_key, tm_create, tm_update, tm_delete, tm_activity) VALUES ${rows.join(", ")} ON CONFLICT DO NOTHING`,
    values: [customerId, ...talkIds],
  };
}

/**
 * The statement of a batch: the talks' heads move (one row per talk, as in Talkhub's
 * commitSends), the message rows and the message_created event rows, built by the service's own
 * row functions (messageRow, eventRow) so they are the rows Talkhub writes.
 */
export function batchStatement(messages: readonly Message[]): { text: string; values: unknown[] } {
  const values: unknown[] = [];
  const p = (value: unknown) => {
    values.push(value);
    return `$${values.length}`;
  };
  const heads = new Map<string, Message>();
  for (const m of messages) heads.set(m.chatId, m);
  const headRows = [...heads.values()].map((m) => `(${p(m.chatId)}::uuid, ${p(m.seq)}::bigint, ${p(m.tmCreate)}::timestamptz)`);
  const messageRows = messages.map((m) => {
    const r = messageRow(m);
    return `(${p(r.id)}::uuid, ${p(r.customer_id)}::uuid, ${p(r.chat_id)}::uuid, ${p(r.seq)}::bigint, ${p(r.parent_id)}::uuid, ${p(r.owner_type)}, ${p(r.owner_id)}::uuid, ${p(r.type)}, ${p(r.text)}, ${p(r.medias)}::jsonb, ${p(r.client_message_id)}, ${p(r.tm_create)}::timestamptz, ${p(r.tm_update)}::timestamptz, ${p(r.tm_delete)}::timestamptz)`;
  });
  const eventRows = messages.map((m) => {
    const e = eventRow({
      type: "message_created",
      message: m,
      seq: m.seq,
      chatId: m.chatId,
      customerId: m.customerId,
      tmCreate: m.tmCreate,
      actor: { ownerType: "agent", ownerId: m.ownerId as AgentId },
    });
    return `(${p(e.chat_id)}::uuid, ${p(e.seq)}::bigint, ${p(e.customer_id)}::uuid, ${p(e.type)}, ${p(e.actor_type)}, ${p(e.actor_id)}::uuid, ${p(e.tm_create)}::timestamptz, ${p(e.payload)}::jsonb)`;
  });
  // Concurrent raw batches share talks (Talkhub keeps a talk in one batch at a time), so the
  // heads are locked in id order first: without it, two batches deadlock and fail.
  const lockIds = [...heads.keys()].sort().map((id) => `${p(id)}::uuid`);
  const text =
    `WITH locked AS MATERIALIZED (SELECT id FROM bench_talks WHERE id IN (${lockIds.join(", ")}) ORDER BY id FOR UPDATE), ` +
    `advanced AS (UPDATE bench_talks t SET last_seq = h.last_seq, tm_activity = h.tm_activity ` +
    `FROM (VALUES ${headRows.join(", ")}) AS h(id, last_seq, tm_activity) WHERE t.id = h.id AND t.id IN (SELECT id FROM locked) AND t.tm_delete IS NULL AND t.status = 'active' RETURNING t.id), ` +
    `new_messages AS (INSERT INTO bench_messages (id, customer_id, chat_id, seq, parent_id, owner_type, owner_id, type, text, medias, client_message_id, tm_create, tm_update, tm_delete) VALUES ${messageRows.join(", ")}), ` +
    `new_events AS (INSERT INTO bench_events (chat_id, seq, customer_id, type, actor_type, actor_id, tm_create, payload) VALUES ${eventRows.join(", ")}) ` +
    `SELECT id FROM advanced`;
  return { text, values };
}

export async function rawInserter(database: BenchDatabase, talkIds: readonly string[], customerId: string): Promise<RawInserter> {
  const copies = talkCopies(talkIds, customerId);
  if (database.backend === "postgres") {
    let pool: pg.Pool | undefined;
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    for (const statement of createCopies) await admin.query(statement);
    await admin.query(copies.text, copies.values);
    await admin.end();
    return {
      label: `pg (node-postgres), BEGIN; INSERT; COMMIT per row, pool of min(C, ${rawPoolMax})`,
      batchedLabel: `pg, one multi-row statement per batch (messages, events, talk heads), pool of min(C, ${rawPoolMax})`,
      insertBatch: async (messages) => {
        const { text, values } = batchStatement(messages);
        await pool!.query(text, values);
      },
      setConcurrency: async (concurrency) => {
        await pool?.end();
        pool = new pg.Pool({ connectionString: database.url, max: Math.min(concurrency, rawPoolMax) });
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
  for (const statement of createCopies) await lite.exec(statement);
  await lite.query(copies.text, copies.values);
  return {
    label: "in-process PGlite (file-backed), transaction per row",
    batchedLabel: "in-process PGlite (file-backed), one multi-row statement per batch (messages, events, talk heads)",
    insertBatch: async (messages) => {
      const { text, values } = batchStatement(messages);
      await lite.query(text, values);
    },
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

function summarizeLoad(system: SendPoint["system"], concurrency: number, talks: number, load: LoadResult, meanBatch?: number): SendPoint {
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
    ...(meanBatch === undefined ? {} : { meanBatch: round(meanBatch, 2) }),
  };
}

/** Wraps the measured window of a point (not its warm-up), e.g. to sample CPU around it. */
export type Around = (work: () => Promise<LoadResult>) => Promise<LoadResult>;
const bare: Around = (work) => work();

/** Talkhub sends at concurrency C into `talkIds` (round robin), over 4 HTTP/2 connections. */
export async function talkhubSends(
  connections: Clients[],
  talkIds: readonly string[],
  concurrency: number,
  durationMs: number,
  warmupMs: number,
  around: Around = bare,
  meanBatch?: () => number,
): Promise<SendPoint> {
  const send = (n: number) =>
    connections[n % connections.length]!.messages.sendMessage({ chatId: talkIds[n % talkIds.length]!, text: `bench send ${n}` }).then(
      () => undefined,
    );
  if (warmupMs > 0) await fullSpeed(concurrency, warmupMs, 10_000_000, send);
  const load = await around(() => fullSpeed(concurrency, durationMs, 10_000_000, send));
  return summarizeLoad("talkhub", concurrency, talkIds.length, load, meanBatch?.());
}

let rawSeq = 0;

/** A bench message as the service would build it, with a seq far above the seeded ones. */
function rawMessage(agent: BenchAgent, chatId: string, n: number): Message {
  const now = new Date();
  return {
    id: uuidv7() as MessageId,
    customerId: agent.customerId as CustomerId,
    ownerType: "agent",
    ownerId: agent.id as AgentId,
    chatId: chatId as TalkId,
    parentId: null,
    type: "normal",
    text: `bench send ${n}`,
    medias: [],
    reactions: [],
    clientMessageId: null,
    // Unique (chat_id, seq) across every point of the run.
    seq: 1_000_000_000 + ++rawSeq,
    tmCreate: now,
    tmUpdate: now,
    tmDelete: null,
  };
}

/** Inserts bench message n as one row in its own transaction (raw per row), round robin over the talks. */
export function rawInsertOne(
  raw: RawInserter,
  agent: BenchAgent,
  talkIds: readonly string[],
  concurrency: number,
): (n: number) => Promise<void> {
  return (n) => {
    const m = rawMessage(agent, talkIds[n % talkIds.length]!, n);
    return raw.insert([m.id, m.customerId, m.chatId, m.seq, m.ownerId, m.text, m.tmCreate], concurrency);
  };
}

export async function rawSends(
  raw: RawInserter,
  agent: BenchAgent,
  talkIds: readonly string[],
  concurrency: number,
  durationMs: number,
  warmupMs: number,
  around: Around = bare,
): Promise<SendPoint> {
  await raw.setConcurrency(concurrency);
  const send = rawInsertOne(raw, agent, talkIds, concurrency);
  if (warmupMs > 0) await fullSpeed(concurrency, warmupMs, 10_000_000, send);
  return summarizeLoad("raw", concurrency, talkIds.length, await around(() => fullSpeed(concurrency, durationMs, 10_000_000, send)));
}

/**
 * Callers' messages grouped into statements of `size` (a partial batch goes after 2 ms, so the
 * last callers of a window are not left waiting); each caller is answered when its statement is.
 */
class RawBatcher {
  #queue: { message: Message; done: (error?: unknown) => void }[] = [];
  #timer: NodeJS.Timeout | undefined;
  statements = 0;
  rows = 0;

  constructor(
    private readonly raw: RawInserter,
    private readonly size: number,
  ) {}

  add(message: Message): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#queue.push({ message, done: (error) => (error === undefined ? resolve() : reject(error)) });
      if (this.#queue.length >= this.size) this.#flush();
      else this.#timer ??= setTimeout(() => this.#flush(), 2);
    });
  }

  #flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    while (this.#queue.length > 0) {
      const batch = this.#queue.splice(0, this.size);
      this.statements++;
      this.rows += batch.length;
      this.raw.insertBatch(batch.map((b) => b.message)).then(
        () => batch.forEach((b) => b.done()),
        (error: unknown) => batch.forEach((b) => b.done(error ?? new Error("batch failed"))),
      );
      if (this.#queue.length < this.size) break;
    }
    if (this.#queue.length > 0) this.#timer = setTimeout(() => this.#flush(), 2);
  }
}

export async function rawBatchedSends(
  raw: RawInserter,
  agent: BenchAgent,
  talkIds: readonly string[],
  concurrency: number,
  batchSize: number,
  durationMs: number,
  warmupMs: number,
  around: Around = bare,
): Promise<SendPoint> {
  await raw.setConcurrency(concurrency);
  const size = Math.max(1, Math.min(concurrency, Math.round(batchSize)));
  const warm = new RawBatcher(raw, size);
  if (warmupMs > 0) await fullSpeed(concurrency, warmupMs, 10_000_000, (n) => warm.add(rawMessage(agent, talkIds[n % talkIds.length]!, n)));
  const batcher = new RawBatcher(raw, size);
  const load = await around(() =>
    fullSpeed(concurrency, durationMs, 10_000_000, (n) => batcher.add(rawMessage(agent, talkIds[n % talkIds.length]!, n))),
  );
  return summarizeLoad(
    "raw-batched",
    concurrency,
    talkIds.length,
    load,
    batcher.statements === 0 ? NaN : batcher.rows / batcher.statements,
  );
}

export async function runSend(
  server: Server,
  raw: RawInserter,
  agent: BenchAgent,
  talkIds: readonly string[],
  options: SendOptions,
  log: (line: string) => void,
  cpu: CpuMeter,
): Promise<SendPoint[]> {
  const connections = Array.from({ length: 4 }, () => grpcClients(server.url, agent.token));
  const points: SendPoint[] = [];
  const measured =
    (step: string): Around =>
    (work) =>
      cpu.measure(step, "sends", work, (load) => load.ackedCount);
  try {
    for (const talks of options.spreads) {
      const ids = talkIds.slice(0, talks);
      for (const c of options.concurrencies) {
        const label = `send ${server.backend} C=${c} ${talks === 1 ? "one talk" : `${talks} talks`}`;
        let batches = { sum: NaN, count: NaN };
        let serverCpuPerSendMs: number | undefined;
        const measuredTalkhub = await talkhubSends(
          connections,
          ids,
          c,
          options.durationMs,
          options.warmupMs,
          async (work) => {
            const before = await server.sendBatches();
            const load = await measured(`${label}: Talkhub`)(work);
            serverCpuPerSendMs = cpu.steps.at(-1)?.perOperationMs["server"];
            const after = await server.sendBatches();
            batches = { sum: after.sum - before.sum, count: after.count - before.count };
            return load;
          },
          () => (batches.count > 0 ? batches.sum / batches.count : NaN),
        );
        const t: SendPoint = serverCpuPerSendMs === undefined ? measuredTalkhub : { ...measuredTalkhub, serverCpuPerSendMs };
        const r = await rawSends(raw, agent, ids, c, options.durationMs, options.warmupMs, measured(`${label}: raw per row`));
        // The batch size Talkhub reached at this point (1 when it is unknown).
        const size = Number.isFinite(t.meanBatch) ? (t.meanBatch as number) : 1;
        const b = await rawBatchedSends(raw, agent, ids, c, size, options.durationMs, options.warmupMs, measured(`${label}: raw batched`));
        points.push(t, r, b);
        const failed = (p: SendPoint) => (p.failed ? `, ${p.failed} failed: ${p.errors[0]}` : "");
        log(
          `  ${label}: talkhub ${t.sendsPerSec}/s (p50 ${t.ack.p50} p99 ${t.ack.p99} ms, batches of ${t.meanBatch}${failed(t)}) ` +
            `raw ${r.sendsPerSec}/s (p50 ${r.ack.p50} p99 ${r.ack.p99} ms${failed(r)}) ratio ${round(t.sendsPerSec / r.sendsPerSec, 2)}; ` +
            `raw batched ${b.sendsPerSec}/s (batches of ${b.meanBatch}, p50 ${b.ack.p50} p99 ${b.ack.p99} ms${failed(b)}) ratio ${round(t.sendsPerSec / b.sendsPerSec, 2)}`,
        );
      }
    }
    return points;
  } finally {
    for (const c of connections) c.close();
  }
}
