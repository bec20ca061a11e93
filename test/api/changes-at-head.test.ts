/**
 * Changes to a talk at its head (docs/design.md, "One head per talk orders everything"): every
 * change reads once and writes once, counted at the driver (BEGIN and COMMIT included), and
 * changes racing on one talk lose nothing and leave its seq gap-free.
 */
import { describe, expect, it } from "vitest";
import { ConnectError } from "@connectrpc/connect";
import { Code, backends, createTalk, must, newCustomer, sendText, useService } from "../support/harness.js";
import { limits } from "../../src/domain/model/limits.js";
import type { TalkId } from "../../src/domain/model/ids.js";

/** Round trips of a change on the happy path. */
const maxRoundTrips = 2;

describe.each(backends)("changes at the talk's head on %s", (backend) => {
  let statements: string[] | undefined;
  const env = useService(backend, { onStatement: (sql) => statements?.push(sql) });

  /** Asserts that `call` sent at most `max` statements to the database (and shows them if not). */
  async function expectRoundTrips(max: number, call: () => Promise<unknown>): Promise<void> {
    const seen = await counted(call);
    expect(seen.length, seen.join("\n")).toBeLessThanOrEqual(max);
  }

  /** The statements `call` sent to the database. */
  async function counted(call: () => Promise<unknown>): Promise<string[]> {
    const seen: string[] = [];
    statements = seen;
    try {
      await call();
    } finally {
      statements = undefined;
    }
    return seen;
  }

  async function fixture() {
    const customer = newCustomer();
    const [a, b, c] = await Promise.all([env.agent(customer, "Ann"), env.agent(customer, "Bob"), env.agent(customer, "Cid")]);
    const talk = await createTalk(a, [b]);
    const message = await sendText(a, talk.id, "first draft");
    return { a, b, c, talk, message };
  }

  it(`edits and deletes a message in at most ${maxRoundTrips}`, async () => {
    const { a, message } = await fixture();
    await expectRoundTrips(maxRoundTrips, () => a.messages.updateMessage({ id: message.id, text: "second draft" }));
    await expectRoundTrips(maxRoundTrips, () => a.messages.deleteMessage({ id: message.id }));
  });

  it(`adds and removes a reaction in at most ${maxRoundTrips}`, async () => {
    const { b, message } = await fixture();
    await expectRoundTrips(maxRoundTrips, () => b.messages.addReaction({ messageId: message.id, emoji: "👍" }));
    await expectRoundTrips(maxRoundTrips, () => b.messages.removeReaction({ messageId: message.id, emoji: "👍" }));
  });

  it(`adds and removes a participant in at most ${maxRoundTrips}`, async () => {
    const { a, c, talk } = await fixture();
    let added: { participant?: { id: string } } = {};
    await expectRoundTrips(maxRoundTrips, async () => (added = await a.talks.addParticipant({ chatId: talk.id, agentId: c.id })));
    const participantId = must(added.participant, "participant").id;
    await expectRoundTrips(maxRoundTrips, () => a.talks.removeParticipant({ chatId: talk.id, participantId }));
  });

  it(`updates, closes, reopens and deletes a talk in at most ${maxRoundTrips}`, async () => {
    const { a, talk } = await fixture();
    await expectRoundTrips(maxRoundTrips, () => a.talks.updateTalk({ id: talk.id, name: "renamed" }));
    await expectRoundTrips(maxRoundTrips, () => a.talks.closeTalk({ id: talk.id }));
    await expectRoundTrips(maxRoundTrips, () => a.talks.reopenTalk({ id: talk.id }));
    await expectRoundTrips(maxRoundTrips, () => a.talks.deleteTalk({ id: talk.id }));
  });

  it("reads a message in one round trip", async () => {
    const { b, message } = await fixture();
    await expectRoundTrips(1, () => b.messages.getMessage({ id: message.id }));
  });

  it("answers a no-op change (the reaction is there already) from its one read", async () => {
    const { b, message } = await fixture();
    await b.messages.addReaction({ messageId: message.id, emoji: "👍" });
    await expectRoundTrips(1, () => b.messages.addReaction({ messageId: message.id, emoji: "👍" }));
  });

  it("loses no edit or reaction of 20 agents changing one talk at once, and keeps its seq gap-free", async () => {
    const customer = newCustomer();
    const owner = await env.agent(customer, "Owner");
    const others = await Promise.all(Array.from({ length: 19 }, (_, i) => env.agent(customer, `Agent ${i}`)));
    const everyone = [owner, ...others];
    const talk = await createTalk(owner, others);
    const target = await sendText(owner, talk.id, "react!");
    const drafts = await Promise.all(everyone.map((agent) => sendText(agent, talk.id, `draft of ${agent.name}`)));

    const seen = await counted(() =>
      Promise.all(
        everyone.flatMap((agent, i) => [
          agent.messages.addReaction({ messageId: target.id, emoji: "🚀" }),
          agent.messages.updateMessage({ id: must(drafts[i]).id, text: `final of ${agent.name}` }),
        ]),
      ),
    );
    if (backend === "postgres") {
      // Forty changes over ten connections race: some lose at the head and read again (more
      // than two statements each), and some take the row lock after three lost races. PGlite
      // runs one statement at a time, and there a change's read and write were not seen apart.
      expect(seen.length).toBeGreaterThan(2 * 2 * everyone.length);
      expect(seen.filter((statement) => /for update/i.test(statement)).length).toBeGreaterThan(0);
    }

    const reacted = must((await owner.messages.getMessage({ id: target.id })).message, "message");
    expect(reacted.metadata?.reactions.map((r) => r.ownerId).sort()).toEqual(everyone.map((agent) => agent.id).sort());
    for (const [i, agent] of everyone.entries()) {
      expect((await owner.messages.getMessage({ id: must(drafts[i]).id })).message?.text).toBe(`final of ${agent.name}`);
    }
    const db = env.service.database.db;
    const head = await db.selectFrom("talks").select("last_seq").where("id", "=", talk.id).executeTakeFirstOrThrow();
    const events = await db
      .selectFrom("events")
      .select(["seq", "type"])
      .where("chat_id", "=", talk.id as TalkId)
      .orderBy("seq")
      .execute();
    expect(events.map((e) => Number(e.seq))).toEqual(Array.from({ length: Number(head.last_seq) }, (_, i) => i + 1));
    expect(events.filter((e) => e.type === "reaction_added")).toHaveLength(everyone.length);
    expect(events.filter((e) => e.type === "message_updated")).toHaveLength(everyone.length);
  });

  it("grants the last free reactions of a message exactly once when several agents race for them", async () => {
    const { a, b, message } = await fixture();
    // The message is five short of the limit; the filler rows need no events for this.
    const db = env.service.database.db;
    const start = new Date();
    await db
      .insertInto("reactions")
      .values(
        Array.from({ length: limits.maxReactionsPerMessage - 5 }, (_, i) => ({
          message_id: message.id,
          owner_id: a.id,
          emoji: `e${i}`,
          owner_type: "agent",
          tm_create: start,
        })),
      )
      .execute();
    const results = await Promise.allSettled(
      [a, b].flatMap((agent) =>
        Array.from({ length: 6 }, (_, i) => agent.messages.addReaction({ messageId: message.id, emoji: `late${i}` })),
      ),
    );
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(5);
    for (const refused of results.filter((r) => r.status === "rejected")) {
      expect(ConnectError.from(refused.reason).code).toBe(Code.ResourceExhausted);
    }
    const stored = await db
      .selectFrom("reactions")
      .select((eb) => eb.fn.countAll<string>().as("n"))
      .where("message_id", "=", message.id)
      .executeTakeFirstOrThrow();
    expect(Number(stored.n)).toBe(limits.maxReactionsPerMessage);
  });
});
