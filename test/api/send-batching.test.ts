/**
 * Group commit: concurrent sends share a statement, yet each send gets its own answer and
 * every talk's seq stays gap-free and ordered.
 */
import { describe, expect, it } from "vitest";
import type { Talk } from "../../gen/talk/v1/resources_pb.js";
import { Code, backends, createTalk, must, newCustomer, useService, type TestAgent } from "../support/harness.js";

describe.each(backends)("send batching on %s", (backend) => {
  const env = useService(backend);

  it("answers each of many concurrent sends on its own, good and bad mixed in one batch", async () => {
    const customer = newCustomer();
    const [a, b, outsider] = await Promise.all([env.agent(customer, "Ann"), env.agent(customer, "Bob"), env.agent(customer, "Out")]);
    const open = await Promise.all(Array.from({ length: 5 }, () => createTalk(a, [b], "group")));
    const closed = await createTalk(a, [b], "group");
    await a.talks.closeTalk({ id: closed.id });
    const parentElsewhere = must((await a.messages.sendMessage({ chatId: open[1]?.id ?? "", text: "parent" })).message);

    type Outcome = { kind: "ok"; chatId: string; seq: bigint } | { kind: "error"; code: Code };
    const settle = (call: Promise<{ message?: { chatId: string; seq: bigint } }>): Promise<Outcome> =>
      call.then(
        (r) => ({ kind: "ok", chatId: must(r.message).chatId, seq: must(r.message).seq }),
        (e: { code: Code }) => ({ kind: "error", code: e.code }),
      );
    const calls: { expect: "ok" | Code; outcome: Promise<Outcome> }[] = [];
    for (let i = 0; i < 120; i++) {
      const talk = open[i % open.length];
      const chatId = must(talk).id;
      const sender = i % 2 === 0 ? a : b;
      switch (i % 10) {
        case 3:
          calls.push({ expect: Code.NotFound, outcome: settle(outsider.messages.sendMessage({ chatId, text: `x${i}` })) });
          break;
        case 5:
          calls.push({
            expect: Code.FailedPrecondition,
            outcome: settle(sender.messages.sendMessage({ chatId: closed.id, text: `c${i}` })),
          });
          break;
        case 7:
          calls.push({
            expect: i % open.length === 1 ? "ok" : Code.InvalidArgument,
            outcome: settle(sender.messages.sendMessage({ chatId, text: `p${i}`, parentId: parentElsewhere.id })),
          });
          break;
        default:
          calls.push({
            expect: "ok",
            outcome: settle(sender.messages.sendMessage({ chatId, text: `m${i}`, clientMessageId: `k${i % 40}` })),
          });
      }
    }
    const outcomes = await Promise.all(calls.map((c) => c.outcome));
    outcomes.forEach((outcome, i) => {
      const expected = calls[i]?.expect;
      if (expected === "ok") expect(outcome, `call ${i}`).toMatchObject({ kind: "ok" });
      else expect(outcome, `call ${i}`).toEqual({ kind: "error", code: expected });
    });

    // Each talk's messages have distinct seqs, and its events run 1..last_seq with no gap.
    for (const talk of open) {
      const got = must((await a.talks.getTalk({ id: talk.id })).talk);
      const list = await a.messages.listMessages({ chatId: talk.id, pageSize: 200 });
      const seqs = list.result.map((m) => m.seq);
      expect(new Set(seqs).size).toBe(seqs.length);
      const events: bigint[] = [];
      const controller = new AbortController();
      try {
        for await (const response of a.talks.watchTalk({ chatId: talk.id, afterSeq: 0n }, { signal: controller.signal })) {
          if (response.kind.case === "event") events.push(response.kind.value.seq);
          if (events.length === Number(got.lastSeq)) break;
        }
      } finally {
        controller.abort();
      }
      expect(events).toEqual(Array.from({ length: Number(got.lastSeq) }, (_, i) => BigInt(i + 1)));
    }
  });

  it("answers each caller of a batch with its own message: text, owner, talk and id", async () => {
    const customer = newCustomer();
    const agents = await Promise.all(["Ann", "Bob", "Cid", "Dee"].map((name) => env.agent(customer, name)));
    const [a, ...others] = agents as [TestAgent, ...TestAgent[]];
    // Two talks all four are in (shared by many senders at once) and one talk per pair of agents.
    const shared = await Promise.all([createTalk(a, others), createTalk(a, others)]);
    const own = await Promise.all(others.map((other) => createTalk(a, [other])));
    const sends = Array.from({ length: 160 }, (_, i) => {
      const sender = agents[i % agents.length] as TestAgent;
      const talk = i % 3 === 0 ? (own[(i >> 2) % own.length] as Talk) : (shared[i % 2] as Talk);
      // A pair talk has only a and one other agent: anyone else sends to a shared talk.
      const inTalk = i % 3 !== 0 || sender === a || own.indexOf(talk) === others.indexOf(sender);
      const chatId = (inTalk ? talk : (shared[0] as Talk)).id;
      const text = `from ${sender.name} #${i} to ${chatId}`;
      const clientMessageId = i % 2 === 0 ? `own-${i}` : "";
      return { sender, chatId, text, clientMessageId };
    });
    const answers = await Promise.all(
      sends.map(async (send) => ({
        send,
        message: must(
          (await send.sender.messages.sendMessage({ chatId: send.chatId, text: send.text, clientMessageId: send.clientMessageId })).message,
        ),
      })),
    );
    const stored = await Promise.all(
      answers.map(async ({ send, message }) => must((await send.sender.messages.getMessage({ id: message.id })).message)),
    );
    answers.forEach(({ send, message }, i) => {
      const mine = { text: send.text, ownerId: send.sender.id, chatId: send.chatId, clientMessageId: send.clientMessageId };
      expect(message, send.text).toMatchObject(mine);
      expect(stored[i], `stored ${send.text}`).toMatchObject({ ...mine, id: message.id, seq: message.seq });
    });
    expect(new Set(answers.map((r) => r.message.id)).size, "distinct messages").toBe(sends.length);
  }, 60_000);

  it("sends the same client_message_id concurrently from two agents as two messages, each once", async () => {
    const customer = newCustomer();
    const [a, b] = await Promise.all([env.agent(customer, "Ann"), env.agent(customer, "Bob")]);
    const talk = await createTalk(a, [b], "group");
    const sends = Array.from({ length: 40 }, (_, i) =>
      (i % 2 === 0 ? a : b).messages.sendMessage({ chatId: talk.id, text: "once", clientMessageId: "same" }),
    );
    const ids = (await Promise.all(sends)).map((r) => must(r.message).id);
    expect(new Set(ids).size).toBe(2);
    const list = await a.messages.listMessages({ chatId: talk.id, pageSize: 200 });
    expect(list.result.filter((m) => m.text === "once")).toHaveLength(2);
  });

  it("refuses every send of a batch to a talk remembered as closed, and sends again once it is reopened", async () => {
    const customer = newCustomer();
    const [a, b] = await Promise.all([env.agent(customer, "Ann"), env.agent(customer, "Bob")]);
    const talk = await createTalk(a, [b], "group");
    await a.talks.closeTalk({ id: talk.id });
    // The service reads the talk (closed) and remembers it; the next batch plans from memory.
    await expect(a.messages.sendMessage({ chatId: talk.id, text: "first" })).rejects.toMatchObject({ code: Code.FailedPrecondition });
    for (let round = 0; round < 3; round++) {
      const outcomes = await Promise.allSettled(
        Array.from({ length: 6 }, (_, i) => a.messages.sendMessage({ chatId: talk.id, text: `closed ${round}.${i}` })),
      );
      for (const outcome of outcomes) {
        expect(outcome.status).toBe("rejected");
        if (outcome.status === "rejected") expect((outcome.reason as { code: Code }).code).toBe(Code.FailedPrecondition);
      }
    }
    await b.talks.reopenTalk({ id: talk.id });
    const sent = await Promise.all(Array.from({ length: 6 }, (_, i) => a.messages.sendMessage({ chatId: talk.id, text: `open ${i}` })));
    expect(new Set(sent.map((r) => must(r.message).seq)).size).toBe(6);
  });
});
