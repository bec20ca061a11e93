import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { Code, backends, createTalk, expectCode, must, newCustomer, sendText, useService } from "../support/harness.js";
import type { TestAgent } from "../support/harness.js";

describe.each(backends)("access on %s", (backend) => {
  const env = useService(backend);

  /** Every read and write of a talk and its message that must answer NOT_FOUND to `agent`. */
  async function expectNoAccess(agent: TestAgent, chatId: string, messageId: string, participantId: string): Promise<void> {
    await expectCode(agent.talks.getTalk({ id: chatId }), Code.NotFound);
    await expectCode(agent.talks.listParticipants({ chatId }), Code.NotFound);
    await expectCode(agent.talks.updateTalk({ id: chatId, name: "hijacked" }), Code.NotFound);
    await expectCode(agent.talks.closeTalk({ id: chatId }), Code.NotFound);
    await expectCode(agent.talks.deleteTalk({ id: chatId }), Code.NotFound);
    await expectCode(agent.talks.addParticipant({ chatId, agentId: agent.id }), Code.NotFound);
    await expectCode(agent.talks.removeParticipant({ chatId, participantId }), Code.NotFound);
    await expectCode(agent.messages.sendMessage({ chatId, text: "hi" }), Code.NotFound);
    await expectCode(agent.messages.listMessages({ chatId }), Code.NotFound);
    await expectCode(agent.messages.getMessage({ id: messageId }), Code.NotFound);
    await expectCode(agent.messages.addReaction({ messageId, emoji: "👍" }), Code.NotFound);
    await expectCode(agent.messages.removeReaction({ messageId, emoji: "👍" }), Code.NotFound);
    await expectCode(agent.messages.updateMessage({ id: messageId, text: "changed" }), Code.NotFound);
    await expectCode(agent.messages.deleteMessage({ id: messageId }), Code.NotFound);
  }

  async function talkOfTwo(): Promise<{ a: TestAgent; b: TestAgent; chatId: string; messageId: string; participantId: string }> {
    const customer = newCustomer();
    const [a, b] = await Promise.all([env.agent(customer, "Ann"), env.agent(customer, "Bob")]);
    const talk = await createTalk(a, [b]);
    const message = await sendText(a, talk.id, "private");
    await b.messages.addReaction({ messageId: message.id, emoji: "👍" });
    const participant = must((await a.talks.listParticipants({ chatId: talk.id })).result[0]);
    return { a, b, chatId: talk.id, messageId: message.id, participantId: participant.id };
  }

  it("hides a talk from a non-participant of the same customer", async () => {
    const { a, chatId, messageId, participantId } = await talkOfTwo();
    const outsider = await env.agent(a.customerId, "Cy");
    await expectNoAccess(outsider, chatId, messageId, participantId);
    const talk = must((await a.talks.getTalk({ id: chatId })).talk);
    expect(talk).toMatchObject({ status: "active", memberCount: 2, name: "" });
    const message = must((await a.messages.getMessage({ id: messageId })).message);
    expect(message.text).toBe("private");
    expect(message.metadata?.reactions).toHaveLength(1);
  });

  it("hides a talk from an agent of another customer", async () => {
    const { a, chatId, messageId, participantId } = await talkOfTwo();
    const foreigner = await env.agent(newCustomer(), "Dee");
    await expectNoAccess(foreigner, chatId, messageId, participantId);
    expect((await a.talks.getTalk({ id: chatId })).talk).toMatchObject({ status: "active", memberCount: 2 });
  });

  it("answers ids that do not exist the same way", async () => {
    const agent = await env.agent(newCustomer(), "Eve");
    await expectNoAccess(agent, randomUUID(), randomUUID(), randomUUID());
  });

  it("rejects malformed ids naming the field", async () => {
    const agent = await env.agent(newCustomer(), "Eve");
    await expectCode(agent.talks.getTalk({ id: "talk-1" }), Code.InvalidArgument, "id");
    await expectCode(agent.talks.listParticipants({ chatId: "talk-1" }), Code.InvalidArgument, "chat_id");
    await expectCode(agent.talks.removeParticipant({ chatId: randomUUID(), participantId: "p" }), Code.InvalidArgument, "participant_id");
    await expectCode(agent.messages.sendMessage({ chatId: "talk-1", text: "x" }), Code.InvalidArgument, "chat_id");
    await expectCode(agent.messages.listMessages({ chatId: "" }), Code.InvalidArgument, "chat_id");
    await expectCode(agent.messages.getMessage({ id: "msg-1" }), Code.InvalidArgument, "id");
    await expectCode(agent.messages.addReaction({ messageId: "msg-1", emoji: "👍" }), Code.InvalidArgument, "message_id");
    await expectCode(agent.messages.updateMessage({ id: "msg-1", text: "x" }), Code.InvalidArgument, "id");
    await expectCode(agent.messages.deleteMessage({ id: "msg-1" }), Code.InvalidArgument, "id");
  });
});
