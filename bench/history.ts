/**
 * History: ListMessages first page and deep pages in a talk of N messages, ListTalks for an
 * agent in T talks. The data is seeded with bulk SQL (generate_series) before the server starts,
 * consistent with the schema: talks, participants, messages, and each talk's event log
 * (participant_joined at seq 1, then one message_created per message).
 */
import { createHash } from "node:crypto";
import pg from "pg";
import type { CpuMeter } from "./cpu.js";
import type { BenchAgent, BenchDatabase, Server } from "./server.js";
import { grpcClients } from "./server.js";
import { nowAbs, Samples, summarize, type Summary } from "./stats.js";
import { encodePageToken } from "../src/domain/model/page-token.js";

export interface SeedPlan {
  readonly key: string;
  readonly agent: BenchAgent;
  /** Messages in talk 1 (the history talk). */
  readonly messages: number;
  /** Talks the agent takes part in (talk 1 is the history talk). */
  readonly talks: number;
}

/** The id of seeded talk g (1-based): md5(key:g) as a UUID, the same in SQL and here. */
export function talkId(plan: SeedPlan, g: number): string {
  const h = createHash("md5").update(`${plan.key}:talk:${g}`).digest("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

const lit = (s: string) => `'${s.replaceAll("'", "''")}'`;

export function seedStatements(plan: SeedPlan): string[] {
  const C = lit(plan.agent.customerId);
  const A = lit(plan.agent.id);
  const key = lit(`${plan.key}:talk:`);
  const N = plan.messages;
  const t0 = "(now() - interval '3 hours')";
  // Time-ordered message ids (like the service's UUIDv7s), so the primary key fills in order.
  const idPrefix = `${createHash("md5").update(plan.key).digest("hex").slice(0, 8)}-0000-7000-8000-`;
  const talkJson = (alias: string) =>
    `jsonb_build_object('id', ${alias}.id, 'customerId', ${alias}.customer_id, 'type', ${alias}.type, 'name', ${alias}.name, ` +
    `'detail', ${alias}.detail, 'status', ${alias}.status, 'memberCount', 1, 'lastSeq', 1, 'tmCreate', ${alias}.tm_create, ` +
    `'tmUpdate', ${alias}.tm_update, 'tmDelete', null, 'tmActivity', ${alias}.tm_create)`;
  return [
    `INSERT INTO agents (id, customer_id, name, role, tm_create, tm_update) VALUES (${A}, ${C}, 'bench', 'agent', now(), now())`,
    `INSERT INTO talks (id, customer_id, type, name, detail, status, member_count, last_seq, pair_key, tm_create, tm_update, tm_delete, tm_activity)
     SELECT md5(${key} || g)::uuid, ${C}, 'group', 'bench talk ' || g, '', 'active', 1,
            CASE WHEN g = 1 THEN ${N + 1} ELSE 1 END, NULL, ${t0}, ${t0}, NULL,
            CASE WHEN g = 1 THEN now() - interval '1 minute' ELSE ${t0} + g * interval '1 millisecond' END
     FROM generate_series(1, ${plan.talks}) AS g`,
    `INSERT INTO participants (id, customer_id, chat_id, owner_type, owner_id, joined_seq, tm_joined)
     SELECT md5(${key} || g || ':p')::uuid, ${C}, md5(${key} || g)::uuid, 'agent', ${A}, 1, ${t0}
     FROM generate_series(1, ${plan.talks}) AS g`,
    `INSERT INTO events (chat_id, seq, customer_id, type, actor_type, actor_id, tm_create, payload)
     SELECT t.id, 1, t.customer_id, 'participant_joined', 'agent', ${A}, t.tm_create,
            jsonb_build_object('participant', jsonb_build_object('id', p.id, 'customerId', p.customer_id, 'ownerType', 'agent',
              'ownerId', p.owner_id, 'chatId', p.chat_id, 'ownerName', 'bench', 'joinedSeq', 1, 'tmJoined', p.tm_joined),
              'talk', ${talkJson("t")})
     FROM talks t JOIN participants p ON p.chat_id = t.id WHERE t.customer_id = ${C}`,
    // Messages of the history talk: seq 2..N+1, one per 5 ms ending a minute ago.
    `INSERT INTO messages (id, customer_id, chat_id, seq, parent_id, owner_type, owner_id, type, text, medias, client_message_id, tm_create, tm_update, tm_delete)
     SELECT (${lit(idPrefix)} || lpad(to_hex(g), 12, '0'))::uuid, ${C}, md5(${key} || 1)::uuid, g + 1, NULL, 'agent', ${A}, 'normal',
            'history message ' || g || ' lorem ipsum dolor sit amet', '[]'::jsonb, NULL,
            now() - interval '1 minute' - (${N} - g) * interval '5 milliseconds',
            now() - interval '1 minute' - (${N} - g) * interval '5 milliseconds', NULL
     FROM generate_series(1, ${N}) AS g`,
    `INSERT INTO events (chat_id, seq, customer_id, type, actor_type, actor_id, tm_create, payload)
     SELECT m.chat_id, m.seq, m.customer_id, 'message_created', 'agent', m.owner_id, m.tm_create,
            jsonb_build_object('message', jsonb_build_object('id', m.id, 'customerId', m.customer_id, 'ownerType', m.owner_type,
              'ownerId', m.owner_id, 'chatId', m.chat_id, 'parentId', null, 'type', m.type, 'text', m.text, 'medias', m.medias,
              'reactions', '[]'::jsonb, 'clientMessageId', null, 'seq', m.seq, 'tmCreate', m.tm_create, 'tmUpdate', m.tm_update,
              'tmDelete', null))
     FROM messages m WHERE m.chat_id = md5(${key} || 1)::uuid`,
    "ANALYZE",
  ];
}

export async function seed(database: BenchDatabase, plan: SeedPlan): Promise<number> {
  const start = nowAbs();
  await database.exec(seedStatements(plan));
  return nowAbs() - start;
}

/** One page the history workload times: which list, how deep, under the name the report uses. */
export interface PlannedCase {
  readonly name: string;
  readonly list: "messages" | "talks";
  /** Items before the page (0: the first page). */
  readonly depth: number;
}

const pageSize = 50;
const walkPage = 200;

/**
 * The pages a run times, from its seed sizes alone (so the verdicts list every configured
 * page, also one that did not complete): ListMessages first, 10,000 deep (reached by paging with
 * the service's own tokens), half-way and at the oldest page; ListTalks first, half-way and at
 * the last page, reached by paging.
 */
export function historyCases(messages: number, talks: number): PlannedCase[] {
  const n = (x: number) => x.toLocaleString("en-US");
  const messageDepths = [0, Math.min(10_000, Math.floor(messages / 400) * walkPage), Math.floor(messages / 2), messages - 100];
  const talkDepths = [0, Math.floor(talks / 2), talks - 100];
  const unique = (depths: number[]) => [...new Set(depths.filter((d) => d >= 0))].sort((a, b) => a - b);
  return [
    ...unique(messageDepths).map((depth) => ({
      name: depth === 0 ? `ListMessages first page (${pageSize})` : `ListMessages page ${n(depth)} deep (${pageSize})`,
      list: "messages" as const,
      depth,
    })),
    ...unique(talkDepths).map((depth) => ({
      name:
        depth === 0
          ? `ListTalks first page (${pageSize}) of ${n(talks)} talks`
          : `ListTalks page ${n(depth)} deep (${pageSize}) of ${n(talks)} talks`,
      list: "talks" as const,
      depth,
    })),
  ];
}

export interface HistoryCase extends PlannedCase {
  readonly talkhub: Summary;
  /** The same keyset query through a plain pg client (Postgres only). */
  readonly raw?: Summary;
  /** CPU ms per call of each role (server, postgres...) over the timed calls. */
  readonly cpuPerCall?: Record<string, number>;
}

export interface HistoryResult {
  readonly messages: number;
  readonly talks: number;
  readonly seedMs: number;
  readonly cases: HistoryCase[];
}

async function warm(iterations: number, call: () => Promise<unknown>): Promise<void> {
  for (let i = 0; i < Math.min(20, iterations); i++) await call();
}

async function time(iterations: number, call: () => Promise<unknown>): Promise<Summary> {
  const samples = new Samples();
  for (let i = 0; i < iterations; i++) {
    const t = nowAbs();
    await call();
    samples.push(nowAbs() - t);
  }
  return summarize(samples.values());
}

export async function runHistory(
  server: Server,
  database: BenchDatabase,
  plan: SeedPlan,
  seedMs: number,
  quick: boolean,
  log: (line: string) => void,
  cpu?: CpuMeter,
): Promise<HistoryResult> {
  const iterations = quick ? 50 : 500;
  const clients = grpcClients(server.url, plan.agent.token);
  const chatId = talkId(plan, 1);
  const cases: HistoryCase[] = [];
  const raw = database.url === undefined ? undefined : new pg.Client({ connectionString: database.url });
  await raw?.connect();
  const rawMessages = (beforeSeq: number | null) => () =>
    raw!.query(
      beforeSeq === null
        ? "SELECT * FROM messages WHERE chat_id = $1 ORDER BY seq DESC LIMIT 51"
        : "SELECT * FROM messages WHERE chat_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT 51",
      beforeSeq === null ? [chatId] : [chatId, beforeSeq],
    );
  const lastSeq = plan.messages + 1;
  // Each page is warmed up, then timed; the server's and Postgres' CPU is sampled around the
  // timed calls only.
  const measure = async (
    planned: PlannedCase,
    call: () => Promise<unknown>,
  ): Promise<{ talkhub: Summary; cpuPerCall?: Record<string, number> }> => {
    await warm(iterations, call);
    if (cpu === undefined) return { talkhub: await time(iterations, call) };
    const talkhub = await cpu.measure(
      `history: ${planned.name}`,
      "calls",
      () => time(iterations, call),
      () => iterations,
    );
    return { talkhub, cpuPerCall: cpu.steps.at(-1)?.perOperationMs ?? {} };
  };
  try {
    for (const planned of historyCases(plan.messages, plan.talks)) {
      if (planned.list === "messages") {
        let token = "";
        if (planned.depth > 0 && planned.depth <= 10_000) {
          // Walked with the service's own page tokens.
          for (let walked = 0; walked < planned.depth; walked += walkPage) {
            token = (await clients.messages.listMessages({ chatId, pageSize: walkPage, pageToken: token })).nextPageToken;
          }
        } else if (planned.depth > 0) {
          // Deeper pages: a token at that seq, made as the service makes a token of this list.
          token = encodePageToken(["messages", plan.agent.customerId, chatId, ""], [lastSeq - planned.depth + 1]);
        }
        const measured = await measure(planned, () => clients.messages.listMessages({ chatId, pageSize, pageToken: token }));
        const rawCall = rawMessages(planned.depth === 0 ? null : lastSeq - planned.depth + 1);
        if (raw !== undefined) await warm(iterations, rawCall);
        const rawCase = raw === undefined ? {} : { raw: await time(iterations, rawCall) };
        cases.push({ ...planned, ...measured, ...rawCase });
      } else {
        // Talk tokens hold a time to the microsecond: reached by paging only.
        let token = "";
        for (let walked = 0; walked < planned.depth; ) {
          const size = Math.min(walkPage, planned.depth - walked);
          token = (await clients.talks.listTalks({ pageSize: size, pageToken: token })).nextPageToken;
          walked += size;
        }
        cases.push({ ...planned, ...(await measure(planned, () => clients.talks.listTalks({ pageSize, pageToken: token }))) });
      }
    }
    for (const c of cases) {
      const perCall =
        c.cpuPerCall === undefined
          ? ""
          : `; CPU ms/call ${Object.entries(c.cpuPerCall)
              .map(([role, ms]) => `${role} ${ms}`)
              .join(", ")}`;
      log(
        `  history ${server.backend}: ${c.name}: p50 ${c.talkhub.p50} ms p99 ${c.talkhub.p99} ms${c.raw ? ` (raw p50 ${c.raw.p50} p99 ${c.raw.p99})` : ""}${perCall}`,
      );
    }
    return { messages: plan.messages, talks: plan.talks, seedMs, cases };
  } finally {
    clients.close();
    await raw?.end();
  }
}
