import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { Message } from "../../gen/talk/v1/resources_pb.js";
import { Code, UUID_RE, backends, createTalk, expectCode, ms, must, newCustomer, sleep, useService } from "../support/harness.js";
import type { TestAgent } from "../support/harness.js";

/** The talk's system messages, oldest first. */
async function systemTexts(agent: TestAgent, chatId: string): Promise<string[]> {
  const { result } = await agent.messages.listMessages({ chatId, pageSize: 200 });
  return result
    .filter((m: Message) => m.type === "system")
    .reverse()
    .map((m) => m.text);
}

describe.each(backends)("participants on %s", (backend) => {
  const env = useService(backend);

  it("adds an agent by agent_id", async () => {
    const customer = newCustomer();
    const [a, b] = await Promise.all([env.agent(customer, "Ann"), env.agent(customer, "Bob")]);
    const talk = await createTalk(a, []);
    const participant = must((await a.talks.addParticipant({ chatId: talk.id, agentId: b.id })).participant);
    expect(participant.id).toMatch(UUID_RE);
    expect(participant).toMatchObject({ customerId: customer, ownerType: "agent", ownerId: b.id, chatId: talk.id, ownerName: "Bob" });
    expect(Math.abs(ms(participant.tmJoined) - Date.now()), "tm_joined is now").toBeLessThan(60_000);
    expect((await b.talks.getTalk({ id: talk.id })).talk?.memberCount).toBe(2);
  });

  it("adds an agent by owner_type and owner_id", async () => {
    const customer = newCustomer();
    const [a, b, c] = await Promise.all([env.agent(customer, "Ann"), env.agent(customer, "Bob"), env.agent(customer, "Cy")]);
    const talk = await createTalk(a, []);
    const byOwner = must((await a.talks.addParticipant({ chatId: talk.id, ownerType: "agent", ownerId: b.id })).participant);
    expect(byOwner).toMatchObject({ ownerType: "agent", ownerId: b.id });
    const untyped = must((await a.talks.addParticipant({ chatId: talk.id, ownerId: c.id })).participant);
    expect(untyped).toMatchObject({ ownerType: "agent", ownerId: c.id });
    expect((await a.talks.getTalk({ id: talk.id })).talk?.memberCount).toBe(3);
  });

  it("rejects an owner_type other than agent, and a request naming no agent", async () => {
    const customer = newCustomer();
    const [a, b] = await Promise.all([env.agent(customer, "Ann"), env.agent(customer, "Bob")]);
    const talk = await createTalk(a, []);
    await expectCode(a.talks.addParticipant({ chatId: talk.id, ownerType: "customer", ownerId: b.id }), Code.InvalidArgument, "owner_type");
    const error = await expectCode(a.talks.addParticipant({ chatId: talk.id }), Code.InvalidArgument);
    expect(error.rawMessage).toMatch(/agent_id|owner_id/);
    await expectCode(a.talks.addParticipant({ chatId: talk.id, agentId: "bob" }), Code.InvalidArgument, "agent_id");
  });

  it("refuses to add the same agent twice", async () => {
    const customer = newCustomer();
    const [a, b] = await Promise.all([env.agent(customer, "Ann"), env.agent(customer, "Bob")]);
    const talk = await createTalk(a, [b]);
    await expectCode(a.talks.addParticipant({ chatId: talk.id, agentId: b.id }), Code.AlreadyExists);
    await expectCode(b.talks.addParticipant({ chatId: talk.id, ownerType: "agent", ownerId: a.id }), Code.AlreadyExists);
    expect((await a.talks.getTalk({ id: talk.id })).talk?.memberCount).toBe(2);
  });

  it("refuses a third agent in a normal talk", async () => {
    const customer = newCustomer();
    const [a, b, c] = await Promise.all([env.agent(customer, "Ann"), env.agent(customer, "Bob"), env.agent(customer, "Cy")]);
    const talk = await createTalk(a, [b], "normal");
    await expectCode(a.talks.addParticipant({ chatId: talk.id, agentId: c.id }), Code.FailedPrecondition);
  });

  it("answers NOT_FOUND for another customer's agent and an unknown agent", async () => {
    const a = await env.agent(newCustomer(), "Ann");
    const stranger = await env.agent(newCustomer(), "Stranger");
    const talk = await createTalk(a, []);
    await expectCode(a.talks.addParticipant({ chatId: talk.id, agentId: stranger.id }), Code.NotFound);
    await expectCode(a.talks.addParticipant({ chatId: talk.id, agentId: randomUUID() }), Code.NotFound);
    expect((await a.talks.getTalk({ id: talk.id })).talk?.memberCount).toBe(1);
  });

  it("lists participants earliest joined first", async () => {
    const customer = newCustomer();
    const [a, b, c] = await Promise.all([env.agent(customer, "Ann"), env.agent(customer, "Bob"), env.agent(customer, "Cy")]);
    const talk = await createTalk(a, []);
    await sleep(5);
    await a.talks.addParticipant({ chatId: talk.id, agentId: c.id });
    await sleep(5);
    await a.talks.addParticipant({ chatId: talk.id, agentId: b.id });
    const { result } = await b.talks.listParticipants({ chatId: talk.id });
    expect(result.map((p) => [p.ownerId, p.ownerName])).toEqual([
      [a.id, "Ann"],
      [c.id, "Cy"],
      [b.id, "Bob"],
    ]);
    expect(result.every((p) => p.chatId === talk.id && p.customerId === customer && p.ownerType === "agent")).toBe(true);
  });

  it("removes a participant, returning the removed record, and re-adds it as a new record", async () => {
    const customer = newCustomer();
    const [a, b] = await Promise.all([env.agent(customer, "Ann"), env.agent(customer, "Bob")]);
    const talk = await createTalk(a, []);
    const added = must((await a.talks.addParticipant({ chatId: talk.id, agentId: b.id })).participant);
    const removed = must((await a.talks.removeParticipant({ chatId: talk.id, participantId: added.id })).participant);
    expect(removed).toMatchObject({ id: added.id, ownerId: b.id, chatId: talk.id });
    expect((await a.talks.listParticipants({ chatId: talk.id })).result.map((p) => p.ownerId)).toEqual([a.id]);
    expect((await a.talks.getTalk({ id: talk.id })).talk?.memberCount).toBe(1);
    await expectCode(b.talks.getTalk({ id: talk.id }), Code.NotFound);
    await expectCode(a.talks.removeParticipant({ chatId: talk.id, participantId: added.id }), Code.NotFound);

    await sleep(5);
    const again = must((await a.talks.addParticipant({ chatId: talk.id, agentId: b.id })).participant);
    expect(again.id).not.toBe(added.id);
    expect(ms(again.tmJoined)).toBeGreaterThanOrEqual(ms(added.tmJoined));
    expect((await b.talks.getTalk({ id: talk.id })).talk?.memberCount).toBe(2);
  });

  it("writes join and leave system messages with the directory name", async () => {
    const customer = newCustomer();
    const [a, b] = await Promise.all([env.agent(customer, "Ann"), env.agent(customer, "Bob Smith")]);
    const talk = await createTalk(a, []);
    const added = must((await a.talks.addParticipant({ chatId: talk.id, agentId: b.id })).participant);
    const { result } = await a.messages.listMessages({ chatId: talk.id });
    const join = must(result[0]);
    expect(join).toMatchObject({ type: "system", ownerType: "system", ownerId: "", chatId: talk.id, customerId: customer });
    expect(join.text).toBe("Bob Smith joined the conversation.");
    await a.talks.removeParticipant({ chatId: talk.id, participantId: added.id });
    const texts = await systemTexts(a, talk.id);
    expect(texts.slice(-2)).toEqual(["Bob Smith joined the conversation.", "Bob Smith left the conversation."]);
  });

  it("lets an agent leave a normal talk", async () => {
    const customer = newCustomer();
    const [a, b] = await Promise.all([env.agent(customer, "Ann"), env.agent(customer, "Bob")]);
    const talk = await createTalk(a, [b], "normal");
    const own = must((await b.talks.listParticipants({ chatId: talk.id })).result.find((p) => p.ownerId === b.id));
    await b.talks.removeParticipant({ chatId: talk.id, participantId: own.id });
    expect((await a.talks.getTalk({ id: talk.id })).talk?.memberCount).toBe(1);
    expect(await systemTexts(a, talk.id)).toContain("Bob left the conversation.");
  });

  it("lets any participant of a group talk remove another", async () => {
    const customer = newCustomer();
    const [a, b, c] = await Promise.all([env.agent(customer, "Ann"), env.agent(customer, "Bob"), env.agent(customer, "Cy")]);
    const talk = await createTalk(a, [b, c]);
    const target = must((await b.talks.listParticipants({ chatId: talk.id })).result.find((p) => p.ownerId === c.id));
    const removed = must((await b.talks.removeParticipant({ chatId: talk.id, participantId: target.id })).participant);
    expect(removed.ownerId).toBe(c.id);
    expect((await a.talks.getTalk({ id: talk.id })).talk?.memberCount).toBe(2);
  });

  it("lets an agent remove the other agent of a normal talk, as the spec's tutorial does", async () => {
    const customer = newCustomer();
    const [a, b] = await Promise.all([env.agent(customer, "Ann"), env.agent(customer, "Bob")]);
    const talk = await createTalk(a, [b], "normal");
    const other = must((await a.talks.listParticipants({ chatId: talk.id })).result.find((p) => p.ownerId === b.id));
    const removed = must((await a.talks.removeParticipant({ chatId: talk.id, participantId: other.id })).participant);
    expect(removed.ownerId).toBe(b.id);
    expect((await a.talks.getTalk({ id: talk.id })).talk?.memberCount).toBe(1);
    await expectCode(b.talks.getTalk({ id: talk.id }), Code.NotFound);
  });

  it("closes the talk when the last participant leaves", async () => {
    const customer = newCustomer();
    const [a, b] = await Promise.all([env.agent(customer, "Ann"), env.agent(customer, "Bob")]);
    const talk = await createTalk(a, [b]);
    const participants = (await a.talks.listParticipants({ chatId: talk.id })).result;
    const ofA = must(participants.find((p) => p.ownerId === a.id));
    const ofB = must(participants.find((p) => p.ownerId === b.id));

    await b.talks.removeParticipant({ chatId: talk.id, participantId: ofB.id });
    expect((await a.talks.getTalk({ id: talk.id })).talk).toMatchObject({ memberCount: 1, status: "active" });
    const last = must((await a.talks.removeParticipant({ chatId: talk.id, participantId: ofA.id })).participant);
    expect(last).toMatchObject({ id: ofA.id, ownerId: a.id });
    await expectCode(a.talks.getTalk({ id: talk.id }), Code.NotFound);
    expect((await a.talks.listTalks({})).result).toEqual([]);

    if (backend === "postgres") {
      // Nobody can see the talk any more, so the database itself shows that it closed.
      const rows = await must(env.query, "postgres query")("SELECT status FROM talks WHERE id = $1", [talk.id]);
      expect(rows).toEqual([{ status: "closed" }]);
    }
  });
});
