import { describe, expect, it } from "vitest";
import type { Message } from "../../gen/talk/v1/resources_pb.js";
import { Code, backends, createTalk, expectCode, ms, must, newCustomer, sendText, useService } from "../support/harness.js";

/** The reactions of a message as [owner_id, emoji] pairs, in response order. */
function reactionsOf(message: Message | undefined): [string, string][] {
  return must(message, "message").metadata?.reactions.map((r) => [r.ownerId, r.emoji]) ?? [];
}

describe.each(backends)("reactions on %s", (backend) => {
  const env = useService(backend);

  it("adds a participant's reaction to the message metadata", async () => {
    const customer = newCustomer();
    const [a, b] = await Promise.all([env.agent(customer, "Ann"), env.agent(customer, "Bob")]);
    const talk = await createTalk(a, [b]);
    const message = await sendText(a, talk.id, "deployed");
    const { message: reacted } = await b.messages.addReaction({ messageId: message.id, emoji: "👍" });
    const reaction = must(reacted?.metadata?.reactions[0], "reaction");
    expect(reaction).toMatchObject({ emoji: "👍", ownerType: "agent", ownerId: b.id });
    expect(Math.abs(ms(reaction.tmCreate) - Date.now()), "tm_create is now").toBeLessThan(60_000);
    expect(reactionsOf((await a.messages.getMessage({ id: message.id })).message)).toEqual([[b.id, "👍"]]);
  });

  it("lets one agent add several emoji, oldest first, and ignores a repeated one", async () => {
    const customer = newCustomer();
    const [a, b] = await Promise.all([env.agent(customer, "Ann"), env.agent(customer, "Bob")]);
    const talk = await createTalk(a, [b]);
    const message = await sendText(a, talk.id, "party?");
    await b.messages.addReaction({ messageId: message.id, emoji: "🎉" });
    await b.messages.addReaction({ messageId: message.id, emoji: "thumbsup" });
    const repeated = await b.messages.addReaction({ messageId: message.id, emoji: "🎉" });
    expect(repeated.message?.id).toBe(message.id);
    expect(reactionsOf(repeated.message)).toEqual([
      [b.id, "🎉"],
      [b.id, "thumbsup"],
    ]);
    expect(reactionsOf((await a.messages.getMessage({ id: message.id })).message)).toEqual([
      [b.id, "🎉"],
      [b.id, "thumbsup"],
    ]);
  });

  it("removes only the caller's own reaction", async () => {
    const customer = newCustomer();
    const [a, b] = await Promise.all([env.agent(customer, "Ann"), env.agent(customer, "Bob")]);
    const talk = await createTalk(a, [b]);
    const message = await sendText(a, talk.id, "vote");
    await a.messages.addReaction({ messageId: message.id, emoji: "👍" });
    await b.messages.addReaction({ messageId: message.id, emoji: "👍" });
    await b.messages.addReaction({ messageId: message.id, emoji: "👀" });

    const afterRemove = await b.messages.removeReaction({ messageId: message.id, emoji: "👍" });
    expect(reactionsOf(afterRemove.message)).toEqual([
      [a.id, "👍"],
      [b.id, "👀"],
    ]);
    const notMine = await b.messages.removeReaction({ messageId: message.id, emoji: "👍" });
    expect(reactionsOf(notMine.message)).toEqual([
      [a.id, "👍"],
      [b.id, "👀"],
    ]);
    expect(reactionsOf((await a.messages.getMessage({ id: message.id })).message)).toEqual([
      [a.id, "👍"],
      [b.id, "👀"],
    ]);
  });

  it("rejects an empty emoji", async () => {
    const a = await env.agent(newCustomer(), "Ann");
    const talk = await createTalk(a, []);
    const message = await sendText(a, talk.id, "x");
    await expectCode(a.messages.addReaction({ messageId: message.id, emoji: "" }), Code.InvalidArgument, "emoji");
  });

  it("keeps every reaction of 20 agents reacting at once", async () => {
    const customer = newCustomer();
    const owner = await env.agent(customer, "Owner");
    const others = await Promise.all(Array.from({ length: 19 }, (_, i) => env.agent(customer, `Agent ${i}`)));
    const talk = await createTalk(owner, others);
    expect(talk.memberCount).toBe(20);
    const message = await sendText(owner, talk.id, "react!");
    await Promise.all([owner, ...others].map((agent) => agent.messages.addReaction({ messageId: message.id, emoji: "🚀" })));
    const reactions = reactionsOf((await owner.messages.getMessage({ id: message.id })).message);
    expect(reactions).toHaveLength(20);
    expect(reactions.map(([id]) => id).sort()).toEqual([owner, ...others].map((agent) => agent.id).sort());
  });
});
