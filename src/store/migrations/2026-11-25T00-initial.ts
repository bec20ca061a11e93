import { sql, type Kysely } from "kysely";

/** The initial schema. Every list and lookup has an index behind it (see the comments). */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("agents")
    .addColumn("id", "uuid", (c) => c.primaryKey())
    .addColumn("customer_id", "uuid", (c) => c.notNull())
    .addColumn("name", "text", (c) => c.notNull().defaultTo(""))
    .addColumn("role", "text", (c) => c.notNull().defaultTo("agent"))
    .addColumn("tm_create", "timestamptz", (c) => c.notNull())
    .addColumn("tm_update", "timestamptz", (c) => c.notNull())
    .addColumn("tm_delete", "timestamptz")
    .execute();
  // ListAgents: a customer's agents by name.
  await db.schema.createIndex("agents_customer_name").on("agents").columns(["customer_id", "name", "id"]).execute();

  await db.schema
    .createTable("talks")
    .addColumn("id", "uuid", (c) => c.primaryKey())
    .addColumn("customer_id", "uuid", (c) => c.notNull())
    .addColumn("type", "text", (c) => c.notNull())
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("detail", "text", (c) => c.notNull())
    .addColumn("status", "text", (c) => c.notNull())
    .addColumn("member_count", "integer", (c) => c.notNull())
    .addColumn("last_seq", "bigint", (c) => c.notNull())
    .addColumn("pair_key", "text")
    .addColumn("tm_create", "timestamptz", (c) => c.notNull())
    .addColumn("tm_update", "timestamptz", (c) => c.notNull())
    .addColumn("tm_delete", "timestamptz")
    .addColumn("tm_activity", "timestamptz", (c) => c.notNull())
    .execute();
  // One live normal talk per pair of agents, enforced here rather than by read-then-write.
  await db.schema
    .createIndex("talks_pair")
    .on("talks")
    .columns(["customer_id", "pair_key"])
    .unique()
    .where(sql.ref("pair_key"), "is not", null)
    .where(sql.ref("tm_delete"), "is", null)
    .execute();

  await db.schema
    .createTable("participants")
    .addColumn("id", "uuid", (c) => c.primaryKey())
    .addColumn("customer_id", "uuid", (c) => c.notNull())
    .addColumn("chat_id", "uuid", (c) => c.notNull().references("talks.id"))
    .addColumn("owner_type", "text", (c) => c.notNull())
    .addColumn("owner_id", "uuid", (c) => c.notNull())
    .addColumn("joined_seq", "bigint", (c) => c.notNull())
    .addColumn("tm_joined", "timestamptz", (c) => c.notNull())
    .execute();
  // Never the same agent twice in a talk; also ListParticipants and the membership check.
  await db.schema.createIndex("participants_talk_owner").on("participants").columns(["chat_id", "owner_id"]).unique().execute();
  // ListTalks: the talks of one agent.
  await db.schema.createIndex("participants_owner").on("participants").columns(["owner_id", "chat_id"]).execute();

  await db.schema
    .createTable("messages")
    .addColumn("id", "uuid", (c) => c.primaryKey())
    .addColumn("customer_id", "uuid", (c) => c.notNull())
    .addColumn("chat_id", "uuid", (c) => c.notNull().references("talks.id"))
    .addColumn("seq", "bigint", (c) => c.notNull())
    .addColumn("parent_id", "uuid", (c) => c.references("messages.id"))
    .addColumn("owner_type", "text", (c) => c.notNull())
    .addColumn("owner_id", "uuid")
    .addColumn("type", "text", (c) => c.notNull())
    .addColumn("text", "text", (c) => c.notNull())
    .addColumn("medias", "jsonb", (c) => c.notNull())
    .addColumn("client_message_id", "text")
    .addColumn("tm_create", "timestamptz", (c) => c.notNull())
    .addColumn("tm_update", "timestamptz", (c) => c.notNull())
    .addColumn("tm_delete", "timestamptz")
    .execute();
  // ListMessages by talk, newest first, keyset on seq.
  await db.schema.createIndex("messages_talk_seq").on("messages").columns(["chat_id", "seq"]).unique().execute();
  // ListMessages of one thread.
  await db.schema
    .createIndex("messages_thread_seq")
    .on("messages")
    .columns(["parent_id", "seq"])
    .where(sql.ref("parent_id"), "is not", null)
    .execute();
  // Retries with the same client_message_id find the first message.
  await db.schema
    .createIndex("messages_idempotency")
    .on("messages")
    .columns(["chat_id", "owner_id", "client_message_id"])
    .unique()
    .where(sql.ref("client_message_id"), "is not", null)
    .execute();

  await db.schema
    .createTable("reactions")
    .addColumn("message_id", "uuid", (c) => c.notNull().references("messages.id"))
    .addColumn("owner_id", "uuid", (c) => c.notNull())
    .addColumn("emoji", "text", (c) => c.notNull())
    .addColumn("owner_type", "text", (c) => c.notNull())
    .addColumn("tm_create", "timestamptz", (c) => c.notNull())
    .addPrimaryKeyConstraint("reactions_pkey", ["message_id", "owner_id", "emoji"])
    .execute();

  await db.schema
    .createTable("events")
    .addColumn("chat_id", "uuid", (c) => c.notNull().references("talks.id"))
    .addColumn("seq", "bigint", (c) => c.notNull())
    .addColumn("customer_id", "uuid", (c) => c.notNull())
    .addColumn("type", "text", (c) => c.notNull())
    .addColumn("actor_type", "text", (c) => c.notNull())
    .addColumn("actor_id", "uuid")
    .addColumn("tm_create", "timestamptz", (c) => c.notNull())
    .addColumn("payload", "jsonb", (c) => c.notNull())
    .addPrimaryKeyConstraint("events_pkey", ["chat_id", "seq"])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  for (const table of ["events", "reactions", "messages", "participants", "talks", "agents"]) {
    await db.schema.dropTable(table).execute();
  }
}
