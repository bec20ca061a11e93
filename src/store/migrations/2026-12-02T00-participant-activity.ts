import { sql, type Kysely } from "kysely";

/**
 * ListTalks as a keyset read: each membership carries its talk's tm_activity, indexed per agent,
 * so an agent's talks come out of the index in activity order instead of being sorted whole
 * (an agent in 10,000 talks read and sorted 10,000 rows per page).
 *
 * The copy is kept by triggers, so every writer of talks.tm_activity (the send batch's head
 * move, saveTalk, imports) keeps it without knowing of it: a new membership takes its talk's
 * activity, and a talk's activity moving moves every membership of it, in the same transaction.
 * The price is a row write per member each time a talk's activity moves (once per talk per
 * send batch); docs/performance.md has the measured cost.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable("participants").addColumn("tm_activity", "timestamptz").execute();
  await sql`UPDATE participants p SET tm_activity = t.tm_activity FROM talks t WHERE t.id = p.chat_id`.execute(db);
  await db.schema
    .alterTable("participants")
    .alterColumn("tm_activity", (c) => c.setNotNull())
    .execute();

  // The talk's row is the source of truth: whatever an insert says is replaced. Without a talk
  // the insert's own time stands in, so the foreign key (not NOT NULL) is what refuses it.
  await sql`
    CREATE FUNCTION participants_take_talk_activity() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      NEW.tm_activity := COALESCE((SELECT t.tm_activity FROM talks t WHERE t.id = NEW.chat_id), NEW.tm_joined);
      RETURN NEW;
    END $$`.execute(db);
  await sql`
    CREATE TRIGGER participants_take_talk_activity BEFORE INSERT ON participants
    FOR EACH ROW EXECUTE FUNCTION participants_take_talk_activity()`.execute(db);
  // Once per statement, over the rows it changed: a send batch moves all its talks' heads in
  // one UPDATE, and this follows with one UPDATE of their memberships. (A trigger with
  // transition tables cannot name columns, so it runs after every talks update and touches
  // only memberships whose copy is behind.)
  await sql`
    CREATE FUNCTION talks_share_activity() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      UPDATE participants p SET tm_activity = moved.tm_activity
      FROM moved WHERE p.chat_id = moved.id AND p.tm_activity IS DISTINCT FROM moved.tm_activity;
      RETURN NULL;
    END $$`.execute(db);
  await sql`
    CREATE TRIGGER talks_share_activity AFTER UPDATE ON talks
    REFERENCING NEW TABLE AS moved FOR EACH STATEMENT EXECUTE FUNCTION talks_share_activity()`.execute(db);

  // ListTalks: an agent's talks by activity, newest first (read backwards), keyset on
  // (tm_activity, chat_id). It also serves every other lookup by owner, so the old
  // (owner_id, chat_id) index goes: one index less to write when activity moves.
  await db.schema
    .createIndex("participants_owner_activity")
    .on("participants")
    .columns(["owner_id", "customer_id", "tm_activity", "chat_id"])
    .execute();
  await db.schema.dropIndex("participants_owner").execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.createIndex("participants_owner").on("participants").columns(["owner_id", "chat_id"]).execute();
  await db.schema.dropIndex("participants_owner_activity").execute();
  await sql`DROP TRIGGER talks_share_activity ON talks`.execute(db);
  await sql`DROP FUNCTION talks_share_activity()`.execute(db);
  await sql`DROP TRIGGER participants_take_talk_activity ON participants`.execute(db);
  await sql`DROP FUNCTION participants_take_talk_activity()`.execute(db);
  await db.schema.alterTable("participants").dropColumn("tm_activity").execute();
}
