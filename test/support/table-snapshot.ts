/**
 * What a request wrote: row counts of the written tables, and a full snapshot of every table of
 * the service's schema, compared row by row (an update, a soft delete or a status change shows,
 * not only a new row).
 */
import { sql } from "kysely";
import type { Executor } from "../../src/store/database.js";

/** The tables a request may write; agents are left out (a valid token upserts its agent). */
export const writtenTables = ["talks", "participants", "messages", "reactions", "events"] as const;
export type RowCounts = Record<(typeof writtenTables)[number], number>;

/** A row as plain values: timestamps as ISO text, bigints as text, JSON and bytes as text. */
export type SnapshotRow = Readonly<Record<string, string | number | boolean | null>>;

/** One table's rows by primary key (the key's values as JSON; the whole row when it has none). */
export interface TableSnapshot {
  readonly key: readonly string[];
  readonly rows: ReadonlyMap<string, SnapshotRow>;
}

/** Every table of the service's schema, by name. */
export type Snapshot = ReadonlyMap<string, TableSnapshot>;

export interface TableChanges {
  readonly added: SnapshotRow[];
  readonly removed: SnapshotRow[];
  readonly changed: { readonly before: SnapshotRow; readonly after: SnapshotRow }[];
}

/** A schema's tables with their primary keys, and whether they hold a customer_id column. */
export interface SchemaTable {
  readonly name: string;
  readonly key: readonly string[];
  readonly scoped: boolean;
}

export async function schemaTables(db: Executor): Promise<SchemaTable[]> {
  const { rows } = await sql<{ name: string; key: string | null; scoped: boolean }>`
    SELECT c.relname::text AS name,
      (SELECT string_agg(a.attname::text, ',' ORDER BY k.n)
         FROM pg_index i
         CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
        WHERE i.indrelid = c.oid AND i.indisprimary) AS key,
      EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'customer_id' AND NOT a.attisdropped) AS scoped
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = current_schema() AND c.relkind = 'r'
    ORDER BY 1`.execute(db);
  return rows.map((r) => ({ name: r.name, key: r.key === null ? [] : r.key.split(","), scoped: r.scoped }));
}

function plainValue(value: unknown): string | number | boolean | null {
  if (value === null || value === undefined) return null;
  if (value instanceof Date) return value.toISOString();
  if (value instanceof Uint8Array) return Buffer.from(value).toString("hex");
  if (typeof value === "bigint") return value.toString();
  if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") return value;
  return JSON.stringify(value);
}

/**
 * Every row of `tables`, ordered by primary key, one query per table. With `customers`, the
 * tables that have a customer_id column hold only those customers' rows (the others stay whole),
 * so a snapshot stays small in a database shared by many scenes.
 */
export async function takeSnapshot(db: Executor, tables: readonly SchemaTable[], customers?: readonly string[]): Promise<Snapshot> {
  const snapshot = new Map<string, TableSnapshot>();
  for (const { name, key, scoped } of tables) {
    const order = sql.raw(key.length === 0 ? "r::text" : key.map((column) => `r."${column}"`).join(", "));
    const where =
      customers !== undefined && customers.length > 0 && scoped ? sql`WHERE r.customer_id::text IN (${sql.join(customers)})` : sql``;
    const { rows } = await sql<Record<string, unknown>>`SELECT r.* FROM ${sql.table(name)} AS r ${where} ORDER BY ${order}`.execute(db);
    const byKey = new Map<string, SnapshotRow>();
    for (const raw of rows) {
      const row: Record<string, string | number | boolean | null> = {};
      for (const [column, value] of Object.entries(raw)) row[column] = plainValue(value);
      byKey.set(JSON.stringify(key.length === 0 ? row : key.map((column) => row[column])), row);
    }
    snapshot.set(name, { key, rows: byKey });
  }
  return snapshot;
}

/** Row counts of the tables a request may write. */
export async function rowCounts(db: Executor): Promise<RowCounts> {
  const columns = writtenTables.map((table) => `(SELECT count(*) FROM ${table}) AS ${table}`).join(", ");
  const { rows } = await sql.raw<Record<string, unknown>>(`SELECT ${columns}`).execute(db);
  const counts = {} as RowCounts;
  for (const table of writtenTables) counts[table] = Number(rows[0]?.[table]);
  return counts;
}

/** The rows that were added, removed or changed per table; only tables with a change are listed. */
export function snapshotChanges(before: Snapshot, after: Snapshot): Map<string, TableChanges> {
  const changes = new Map<string, TableChanges>();
  for (const table of new Set([...before.keys(), ...after.keys()])) {
    const old = before.get(table)?.rows ?? new Map<string, SnapshotRow>();
    const now = after.get(table)?.rows ?? new Map<string, SnapshotRow>();
    const diff: TableChanges = { added: [], removed: [], changed: [] };
    for (const [key, row] of now) {
      const was = old.get(key);
      if (was === undefined) diff.added.push(row);
      else if (JSON.stringify(was) !== JSON.stringify(row)) diff.changed.push({ before: was, after: row });
    }
    for (const [key, row] of old) if (!now.has(key)) diff.removed.push(row);
    if (diff.added.length + diff.removed.length + diff.changed.length > 0) changes.set(table, diff);
  }
  return changes;
}

/** The changes in a few readable lines, for failure messages ("" when nothing changed). */
export function describeChanges(changes: ReadonlyMap<string, TableChanges>): string {
  const lines: string[] = [];
  for (const [table, diff] of changes) {
    for (const row of diff.added) lines.push(`${table} +${JSON.stringify(row)}`);
    for (const row of diff.removed) lines.push(`${table} -${JSON.stringify(row)}`);
    for (const { before, after } of diff.changed) {
      const fields = Object.keys(after).filter((k) => after[k] !== before[k]);
      lines.push(`${table} ~${fields.map((k) => `${k}: ${JSON.stringify(before[k])} -> ${JSON.stringify(after[k])}`).join(", ")}`);
    }
  }
  return lines.join("; ").slice(0, 2_000);
}
