/**
 * Round trips to the database per write: every change to a talk reads once and writes once
 * (docs/design.md, "One head per talk orders everything"). Statements are counted at the
 * driver, BEGIN and COMMIT included.
 */
import { describe, expect, it } from "vitest";
import { backends, createTalk, must, newCustomer, sendText, useService } from "../support/harness.js";

/** Round trips of a change on the happy path. */
const maxRoundTrips = 2;

describe.each(backends)("round trips per write on %s", (backend) => {
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

  it(`updates, closes and reopens a talk in at most ${maxRoundTrips}`, async () => {
    const { a, talk } = await fixture();
    await expectRoundTrips(maxRoundTrips, () => a.talks.updateTalk({ id: talk.id, name: "renamed" }));
    await expectRoundTrips(maxRoundTrips, () => a.talks.closeTalk({ id: talk.id }));
    await expectRoundTrips(maxRoundTrips, () => a.talks.reopenTalk({ id: talk.id }));
  });

  it("answers a no-op change (the reaction is there already) from its one read", async () => {
    const { b, message } = await fixture();
    await b.messages.addReaction({ messageId: message.id, emoji: "👍" });
    await expectRoundTrips(1, () => b.messages.addReaction({ messageId: message.id, emoji: "👍" }));
  });
});
