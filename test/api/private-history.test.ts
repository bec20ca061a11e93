/**
 * Private 1:1 history: in a normal talk an agent sees the messages (with their reactions) and
 * the events from its own newest join on; the talk's opening (its creator's join) is
 * everyone's, so the agents it is created with see it whole. In a group talk every
 * participant sees the whole history.
 */
import { describe, expect, it } from "vitest";
import type { Event } from "../../gen/talk/v1/events_pb.js";
import type { Message } from "../../gen/talk/v1/resources_pb.js";
import { Code, backends, createTalk, expectCode, must, newCustomer, sendText, useService } from "../support/harness.js";
import type { TestAgent } from "../support/harness.js";

/** Every message of a talk the agent can list, newest first, following page tokens (bounded). */
async function allMessages(agent: TestAgent, chatId: string, parentId = ""): Promise<Message[]> {
  const found: Message[] = [];
  let pageToken = "";
  for (let page = 0; page < 50; page++) {
    const response = await agent.messages.listMessages({ chatId, parentId, pageSize: 3, pageToken });
    found.push(...response.result);
    pageToken = response.nextPageToken;
    if (pageToken === "") return found;
  }
  throw new Error("more than 50 pages");
}

/** The events WatchTalk replays after `afterSeq`, up to the talk's current last seq (which must be visible). */
async function replay(agent: TestAgent, chatId: string, afterSeq: number): Promise<Event[]> {
  const lastSeq = Number(must((await agent.talks.getTalk({ id: chatId })).talk).lastSeq);
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), 15_000);
  const events: Event[] = [];
  try {
    for await (const response of agent.talks.watchTalk({ chatId, afterSeq: BigInt(afterSeq) }, { signal: abort.signal })) {
      if (response.kind.case === "event") events.push(response.kind.value);
      // The talk's last event is one the agent may see (each test ends on one).
      if (Number(events.at(-1)?.seq ?? afterSeq) >= lastSeq) break;
    }
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
  return events;
}

/** The message an event is about, if any. */
function messageOf(event: Event): Message | undefined {
  const payload = event.payload;
  switch (payload.case) {
    case "messageCreated":
    case "messageUpdated":
    case "messageDeleted":
      return payload.value;
    case "reactionAdded":
    case "reactionRemoved":
      return payload.value.message;
    default:
      return undefined;
  }
}

describe.each(backends)("private 1:1 history on %s", (backend) => {
  const env = useService(backend);

  /** A normal talk of Ann and Bob with a thread, Bob removed, then Cy added. */
  async function replaced() {
    const customer = newCustomer();
    const [a, b, c] = await Promise.all([env.agent(customer, "Ann"), env.agent(customer, "Bob"), env.agent(customer, "Cy")]);
    const talk = await createTalk(a, [b], "normal");
    const secret = await sendText(a, talk.id, "a secret for Bob only");
    const reply = await sendText(b, talk.id, "and my answer", secret.id);
    await b.messages.addReaction({ messageId: secret.id, emoji: "👀" });
    const bobs = must((await a.talks.listParticipants({ chatId: talk.id })).result.find((p) => p.ownerId === b.id));
    await a.talks.removeParticipant({ chatId: talk.id, participantId: bobs.id });
    const joined = must((await a.talks.addParticipant({ chatId: talk.id, agentId: c.id })).participant);
    const afterJoin = await sendText(a, talk.id, "welcome, Cy");
    const threadAfter = await sendText(a, talk.id, "more on the secret, after Cy joined", secret.id);
    return { customer, a, b, c, talk, secret, reply, joined, afterJoin, threadAfter };
  }

  it("a newcomer in a normal talk lists only the messages from its join on", async () => {
    const { a, c, talk, secret, reply, afterJoin } = await replaced();
    const seen = await allMessages(c, talk.id);
    const texts = seen.map((m) => m.text);
    expect(texts).not.toContain(secret.text);
    expect(texts).not.toContain(reply.text);
    expect(texts).not.toContain("Bob left the conversation.");
    expect(texts).toContain("Cy joined the conversation.");
    expect(texts).toContain(afterJoin.text);
    // The first message Cy sees is its own join's system message.
    expect(seen.at(-1)?.text).toBe("Cy joined the conversation.");
    // Ann, who was there, still sees everything.
    const all = (await allMessages(a, talk.id)).map((m) => m.text);
    expect(all).toEqual(expect.arrayContaining([secret.text, reply.text, "Bob left the conversation.", afterJoin.text]));
  });

  it("a newcomer in a normal talk cannot read, react to, or follow a thread into an older message", async () => {
    const { a, c, talk, secret, reply, threadAfter } = await replaced();
    await expectCode(c.messages.getMessage({ id: secret.id }), Code.NotFound);
    await expectCode(c.messages.getMessage({ id: reply.id }), Code.NotFound);
    await expectCode(c.messages.addReaction({ messageId: secret.id, emoji: "👍" }), Code.NotFound);
    // Nothing changed for Ann: the reaction was not added.
    const kept = must((await a.messages.getMessage({ id: secret.id })).message);
    expect(kept.metadata?.reactions.map((r) => r.emoji)).toEqual(["👀"]);
    // The thread's replies from before the join stay hidden; a reply after it is seen.
    const thread = (await allMessages(c, talk.id, secret.id)).map((m) => m.text);
    expect(thread).toEqual([threadAfter.text]);
    expect(must((await c.messages.getMessage({ id: threadAfter.id })).message).text).toBe(threadAfter.text);
  });

  it("a newcomer's WatchTalk from after_seq 0 replays nothing from before its join", async () => {
    const { a, c, talk, secret, joined, afterJoin } = await replaced();
    // An edit of an old message after the join must not show it to the newcomer either.
    await a.messages.updateMessage({ id: secret.id, text: "a secret for Bob only, edited" });
    const last = await sendText(a, talk.id, "the last word");
    const events = await replay(c, talk.id, 0);
    expect(events.length).toBeGreaterThan(0);
    const joinSeq = Math.min(...events.filter((e) => e.type === "participant_joined").map((e) => Number(e.seq)));
    for (const event of events) {
      expect(Number(event.seq)).toBeGreaterThanOrEqual(joinSeq);
      const message = messageOf(event);
      if (message !== undefined) expect(Number(message.seq), `${event.type} of an older message`).toBeGreaterThanOrEqual(joinSeq);
    }
    const created = events.map(messageOf).map((m) => m?.text);
    expect(created).toContain(afterJoin.text);
    expect(created).toContain(last.text);
    expect(created).not.toContain(secret.text);
    expect(created).not.toContain("a secret for Bob only, edited");
    expect(events.some((e) => e.payload.case === "participantJoined" && e.payload.value.participant?.id === joined.id)).toBe(true);
  });

  it("a newcomer's WatchEvents never carries an edit or a reaction of an older message", async () => {
    const { a, c, talk, secret } = await replaced();
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), 15_000);
    const events: Event[] = [];
    let opened: () => void = () => undefined;
    const open = new Promise<void>((resolve) => (opened = resolve));
    const watching = (async () => {
      try {
        for await (const response of c.talks.watchEvents({ cursor: "" }, { signal: abort.signal })) {
          opened();
          if (response.kind.case === "event") events.push(response.kind.value);
          if (events.some((e) => messageOf(e)?.text === "the last word")) break;
        }
      } catch (error) {
        if (!abort.signal.aborted) throw error;
      }
    })();
    try {
      await open;
      await a.messages.updateMessage({ id: secret.id, text: "a secret for Bob only, edited" });
      await a.messages.addReaction({ messageId: secret.id, emoji: "🔥" });
      await sendText(a, talk.id, "the last word");
      await watching;
    } finally {
      clearTimeout(timer);
      abort.abort();
    }
    expect(events.map((e) => messageOf(e)?.text)).toContain("the last word");
    for (const event of events) expect(messageOf(event)?.id, event.type).not.toBe(secret.id);
  });

  it("a re-added agent in a normal talk sees from its newest join on", async () => {
    const customer = newCustomer();
    const [a, b] = await Promise.all([env.agent(customer, "Ann"), env.agent(customer, "Bob")]);
    const talk = await createTalk(a, [b], "normal");
    const before = await sendText(a, talk.id, "said while Bob was there");
    const bobs = must((await a.talks.listParticipants({ chatId: talk.id })).result.find((p) => p.ownerId === b.id));
    await a.talks.removeParticipant({ chatId: talk.id, participantId: bobs.id });
    const away = await sendText(a, talk.id, "said while Bob was away");
    await a.talks.addParticipant({ chatId: talk.id, agentId: b.id });
    const back = await sendText(a, talk.id, "said after Bob came back");
    const texts = (await allMessages(b, talk.id)).map((m) => m.text);
    expect(texts).toContain(back.text);
    expect(texts).not.toContain(away.text);
    expect(texts).not.toContain(before.text);
    await expectCode(b.messages.getMessage({ id: before.id }), Code.NotFound);
    await expectCode(b.messages.getMessage({ id: away.id }), Code.NotFound);
  });

  it("the agents a normal talk is created with see it from its start", async () => {
    const customer = newCustomer();
    const [a, b] = await Promise.all([env.agent(customer, "Ann"), env.agent(customer, "Bob")]);
    const talk = await createTalk(a, [b], "normal");
    const hello = await sendText(a, talk.id, "hello");
    for (const agent of [a, b]) {
      const texts = (await allMessages(agent, talk.id)).map((m) => m.text);
      expect(texts).toEqual([hello.text, "Bob joined the conversation.", "Ann joined the conversation."]);
      expect((await replay(agent, talk.id, 0)).map((e) => Number(e.seq))).toEqual([1, 2, 3, 4, 5]);
    }
  });

  it("an agent added to a normal talk its creator opened alone sees from its join, not what was said before", async () => {
    const customer = newCustomer();
    const [a, b] = await Promise.all([env.agent(customer, "Ann"), env.agent(customer, "Bob")]);
    const talk = await createTalk(a, [], "normal");
    const early = await sendText(a, talk.id, "a note to self");
    await a.talks.addParticipant({ chatId: talk.id, agentId: b.id });
    const texts = (await allMessages(b, talk.id)).map((m) => m.text);
    expect(texts).toEqual(["Bob joined the conversation."]);
    await expectCode(b.messages.getMessage({ id: early.id }), Code.NotFound);
  });

  it("a newcomer in a group talk sees the whole history", async () => {
    const customer = newCustomer();
    const [a, b, c] = await Promise.all([env.agent(customer, "Ann"), env.agent(customer, "Bob"), env.agent(customer, "Cy")]);
    const talk = await createTalk(a, [b], "group");
    const early = await sendText(a, talk.id, "said before Cy joined");
    const bobs = must((await a.talks.listParticipants({ chatId: talk.id })).result.find((p) => p.ownerId === b.id));
    await a.talks.removeParticipant({ chatId: talk.id, participantId: bobs.id });
    await a.talks.addParticipant({ chatId: talk.id, agentId: c.id });
    const texts = (await allMessages(c, talk.id)).map((m) => m.text);
    expect(texts).toEqual(expect.arrayContaining([early.text, "Ann joined the conversation.", "Bob left the conversation."]));
    expect(must((await c.messages.getMessage({ id: early.id })).message).text).toBe(early.text);
    const events = await replay(c, talk.id, 0);
    expect(Number(events[0]?.seq)).toBe(1);
  });
});
