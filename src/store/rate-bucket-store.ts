/** The shared token buckets of the write limits: one statement takes from many buckets. */
import { sql } from "kysely";
import type { TokenGrant, TokenRequest } from "../domain/write/write-limits.js";
import type { Executor } from "./database.js";

/**
 * Refills each bucket for the time since its last take, gives min(asked, whole tokens) and
 * keeps the rest, in one upsert (the row lock orders concurrent takes from every process). A
 * new bucket starts full. Rows go in key order so that two statements never wait on each
 * other's rows in a cycle. The database's clock is the one clock all processes share. One
 * request per bucket: the caller adds up its takes.
 */
export async function takeTokens(db: Executor, requests: readonly TokenRequest[]): Promise<TokenGrant[]> {
  if (requests.length === 0) return [];
  // The database answers uuids in lower case.
  const keyOf = (r: { customerId: string; agentId: string; writeClass: string }) =>
    `${r.customerId.toLowerCase()}\n${r.agentId.toLowerCase()}\n${r.writeClass}`;
  const order = requests.map((r, i) => ({ key: keyOf(r), i })).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const sorted = order.map(({ i }) => requests[i] as TokenRequest);
  // Every SET expression sees the row as it was; the refill is spelled out where it is used.
  const at = sql`greatest(b.tm_update, statement_timestamp())`;
  const refilled = sql`least(excluded.burst, b.tokens + extract(epoch FROM ${at} - b.tm_update)::float8 * excluded.rate)`;
  // excluded.granted is min(asked, burst), and a bucket never holds more than its burst.
  const granted = sql`least(excluded.granted, floor(${refilled}))`;
  const { rows } = await sql<{ customer_id: string; agent_id: string; class: string; granted: number; tokens: number }>`
    INSERT INTO rate_buckets AS b (customer_id, agent_id, class, tokens, granted, burst, rate, tm_update, full_at)
    SELECT customer_id, agent_id, class, burst - least(asked, floor(burst)), least(asked, floor(burst)), burst, rate,
           statement_timestamp(), statement_timestamp() + make_interval(secs => least(asked, floor(burst)) / rate)
    FROM unnest(
      ${sorted.map((r) => r.customerId)}::uuid[], ${sorted.map((r) => r.agentId)}::uuid[],
      ${sorted.map((r) => r.writeClass)}::text[], ${sorted.map((r) => r.count)}::int[],
      ${sorted.map((r) => r.rate.burst)}::float8[], ${sorted.map((r) => r.rate.perSecond)}::float8[]
    ) WITH ORDINALITY AS r(customer_id, agent_id, class, asked, burst, rate, ord)
    ORDER BY ord
    ON CONFLICT (customer_id, agent_id, class) DO UPDATE SET
      tokens = ${refilled} - ${granted},
      granted = ${granted},
      burst = excluded.burst,
      rate = excluded.rate,
      tm_update = ${at},
      full_at = ${at} + make_interval(secs => (excluded.burst - ${refilled} + ${granted}) / excluded.rate)
    RETURNING customer_id, agent_id, class, granted, tokens
  `.execute(db);
  const byKey = new Map<string, TokenGrant>();
  for (const row of rows) {
    byKey.set(keyOf({ customerId: row.customer_id, agentId: row.agent_id, writeClass: row.class }), {
      granted: Number(row.granted),
      left: Number(row.tokens),
    });
  }
  return requests.map((r) => byKey.get(keyOf(r)) ?? { granted: 0, left: 0 });
}

/** Deletes up to `limit` buckets that are full again; returns how many. */
export async function pruneFullBuckets(db: Executor, limit: number): Promise<number> {
  const result = await sql`
    DELETE FROM rate_buckets b
    USING (SELECT customer_id, agent_id, class FROM rate_buckets WHERE full_at < statement_timestamp() LIMIT ${limit}) d
    WHERE b.customer_id = d.customer_id AND b.agent_id = d.agent_id AND b.class = d.class
      -- A take that refilled the bucket meanwhile moved full_at: that row stays.
      AND b.full_at < statement_timestamp()
  `.execute(db);
  return Number(result.numAffectedRows ?? 0n);
}
