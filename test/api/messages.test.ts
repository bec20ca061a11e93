import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { Media } from "../../gen/talk/v1/resources_pb.js";
import { Code, UUID_RE, backends, createTalk, expectCode, ms, must, newCustomer, sendText, sleep, useService } from "../support/harness.js";
import type { TestAgent } from "../support/harness.js";

const pdf = { type: "application/pdf", url: "https://storage.example.com/design-doc.pdf", name: "design-doc.pdf" };

function medias(count: number): Pick<Media, "type" | "url" | "name">[] {
  return Array.from({ length: count }, (_, i) => ({ ...pdf, name: `doc-${i}.pdf` }));
}

describe.each(backends)("messages on %s", (backend) => {
  const env = useService(backend);

  /** Two agents of a fresh customer in a group talk. */
  async function pair(): Promise<{ a: TestAgent; b: TestAgent; chatId: string; customer: string }> {
    const customer = newCustomer();
    const [a, b] = await Promise.all([env.agent(customer, "Ann"), env.agent(customer, "Bob")]);
    const talk = await createTalk(a, [b]);
    return { a, b, chatId: talk.id, customer };
  }

  describe("SendMessage", () => {
    it("sends a text message with every field filled in", async () => {
      const { a, chatId, customer } = await pair();
      const message = must((await a.messages.sendMessage({ chatId, text: "hello", type: "normal" })).message);
      expect(message.id).toMatch(UUID_RE);
      expect(message).toMatchObject({
        customerId: customer,
        ownerType: "agent",
        ownerId: a.id,
        chatId,
        parentId: "",
        type: "normal",
        text: "hello",
        medias: [],
      });
      expect(message.metadata?.reactions).toEqual([]);
      expect(message.seq).toBeGreaterThan(0n);
      expect(Math.abs(ms(message.tmCreate) - Date.now()), "tm_create is now").toBeLessThan(60_000);
      expect(message.tmDelete).toBeUndefined();
      expect((await a.messages.getMessage({ id: message.id })).message).toMatchObject({ id: message.id, text: "hello", seq: message.seq });
    });

    it("sends medias, up to 10", async () => {
      const { a, chatId } = await pair();
      const one = must((await a.messages.sendMessage({ chatId, text: "doc", medias: [pdf] })).message);
      expect(one.medias.map((m) => ({ type: m.type, url: m.url, name: m.name }))).toEqual([pdf]);
      const onlyMedia = must((await a.messages.sendMessage({ chatId, medias: medias(10) })).message);
      expect(onlyMedia.medias).toHaveLength(10);
      expect(onlyMedia.text).toBe("");
      await expectCode(a.messages.sendMessage({ chatId, medias: medias(11) }), Code.InvalidArgument, "medias");
    });

    it("rejects medias without a MIME type, an http(s) url or a name", async () => {
      const { a, chatId } = await pair();
      for (const bad of [
        { ...pdf, type: "pdf" },
        { ...pdf, type: "" },
        { ...pdf, url: "ftp://example.com/a.pdf" },
        { ...pdf, url: "not a url" },
        { ...pdf, name: "" },
      ]) {
        await expectCode(a.messages.sendMessage({ chatId, text: "x", medias: [bad] }), Code.InvalidArgument, "medias");
      }
      const http = must((await a.messages.sendMessage({ chatId, medias: [{ ...pdf, url: "http://example.com/a.pdf" }] })).message);
      expect(http.medias[0]?.url).toBe("http://example.com/a.pdf");
    });

    it("requires text or medias and limits text to 10000 characters", async () => {
      const { a, chatId } = await pair();
      await expectCode(a.messages.sendMessage({ chatId }), Code.InvalidArgument, "text");
      const longest = "é".repeat(10000);
      expect((await sendText(a, chatId, longest)).text).toBe(longest);
      await expectCode(a.messages.sendMessage({ chatId, text: "x".repeat(10001) }), Code.InvalidArgument, "text");
    });

    it("accepts type normal or empty and rejects system or anything else", async () => {
      const { a, chatId } = await pair();
      expect((await a.messages.sendMessage({ chatId, text: "x", type: "" })).message?.type).toBe("normal");
      await expectCode(a.messages.sendMessage({ chatId, text: "x", type: "system" }), Code.InvalidArgument, "type");
      await expectCode(a.messages.sendMessage({ chatId, text: "x", type: "shout" }), Code.InvalidArgument, "type");
    });

    it("answers NOT_FOUND to a non-participant of the same customer", async () => {
      const { a, chatId } = await pair();
      const outsider = await env.agent(a.customerId, "Cy");
      await expectCode(outsider.messages.sendMessage({ chatId, text: "let me in" }), Code.NotFound);
    });

    it("rejects a malformed chat_id naming the field", async () => {
      const { a } = await pair();
      await expectCode(a.messages.sendMessage({ chatId: "talk-1", text: "x" }), Code.InvalidArgument, "chat_id");
    });
  });

  describe("threads", () => {
    it("accepts a parent in the same talk, also a deleted one, and nests three levels", async () => {
      const { a, b, chatId } = await pair();
      const root = await sendText(a, chatId, "root");
      const reply = await sendText(b, chatId, "reply", root.id);
      const nested = await sendText(a, chatId, "nested", reply.id);
      const deepest = await sendText(b, chatId, "deepest", nested.id);
      expect([reply.parentId, nested.parentId, deepest.parentId]).toEqual([root.id, reply.id, nested.id]);
      await a.messages.deleteMessage({ id: root.id });
      expect((await b.messages.sendMessage({ chatId, text: "late reply", parentId: root.id })).message?.parentId).toBe(root.id);
    });

    it("rejects a parent from another talk, an unknown parent and a malformed one", async () => {
      const { a, b, chatId } = await pair();
      const elsewhere = await createTalk(a, [b]);
      const foreign = await sendText(a, elsewhere.id, "other talk");
      await expectCode(a.messages.sendMessage({ chatId, text: "x", parentId: foreign.id }), Code.InvalidArgument, "parent_id");
      await expectCode(a.messages.sendMessage({ chatId, text: "x", parentId: randomUUID() }), Code.InvalidArgument, "parent_id");
      await expectCode(a.messages.sendMessage({ chatId, text: "x", parentId: "root" }), Code.InvalidArgument, "parent_id");
    });

    it("lists only the direct replies of a parent, newest first", async () => {
      const { a, b, chatId } = await pair();
      const root = await sendText(a, chatId, "root");
      const r1 = await sendText(b, chatId, "r1", root.id);
      const r2 = await sendText(a, chatId, "r2", root.id);
      const r1a = await sendText(a, chatId, "r1a", r1.id);
      await sendText(a, chatId, "unrelated");
      expect((await b.messages.listMessages({ chatId, parentId: root.id })).result.map((m) => m.id)).toEqual([r2.id, r1.id]);
      expect((await b.messages.listMessages({ chatId, parentId: r1.id })).result.map((m) => m.id)).toEqual([r1a.id]);
      expect((await b.messages.listMessages({ chatId, parentId: r2.id })).result).toEqual([]);
    });

    it("never lists replies of a parent in another talk, even another customer's", async () => {
      const { a, chatId } = await pair();
      const other = await pair();
      const secret = await sendText(other.a, other.chatId, "secret root");
      await sendText(other.b, other.chatId, "secret reply", secret.id);
      expect((await a.messages.listMessages({ chatId, parentId: secret.id })).result).toEqual([]);
    });
  });

  describe("client_message_id", () => {
    it("returns the first message for a repeated key", async () => {
      const { a, chatId } = await pair();
      const first = must((await a.messages.sendMessage({ chatId, text: "once", clientMessageId: "k-1" })).message);
      expect(first.clientMessageId).toBe("k-1");
      const second = must((await a.messages.sendMessage({ chatId, text: "once", clientMessageId: "k-1" })).message);
      expect(second.id).toBe(first.id);
      const texts = (await a.messages.listMessages({ chatId })).result.filter((m) => m.type === "normal");
      expect(texts.map((m) => m.id)).toEqual([first.id]);
    });

    it("makes one message from 10 concurrent sends with the same key", async () => {
      const { a, chatId } = await pair();
      const sent = await Promise.all(
        Array.from({ length: 10 }, () => a.messages.sendMessage({ chatId, text: "racing", clientMessageId: "k-race" })),
      );
      expect(new Set(sent.map((r) => must(r.message).id)).size).toBe(1);
      const texts = (await a.messages.listMessages({ chatId })).result.filter((m) => m.type === "normal");
      expect(texts).toHaveLength(1);
    });

    it("scopes the key to its sender", async () => {
      const { a, b, chatId } = await pair();
      const fromA = must((await a.messages.sendMessage({ chatId, text: "a", clientMessageId: "same" })).message);
      const fromB = must((await b.messages.sendMessage({ chatId, text: "b", clientMessageId: "same" })).message);
      expect(fromB.id).not.toBe(fromA.id);
      expect(fromB).toMatchObject({ ownerId: b.id, text: "b" });
    });
  });

  describe("ListMessages", () => {
    it("pages newest first through every message exactly once", async () => {
      const { a, b, chatId } = await pair();
      const sent: string[] = [];
      for (let i = 0; i < 25; i++) sent.push((await sendText(i % 2 === 0 ? a : b, chatId, `m${i}`)).id);

      const seen: { id: string; seq: bigint; type: string }[] = [];
      let pageToken = "";
      let pages = 0;
      do {
        const page = await b.messages.listMessages({ chatId, pageSize: 7, pageToken });
        expect(page.result.length).toBeLessThanOrEqual(7);
        seen.push(...page.result.map((m) => ({ id: m.id, seq: m.seq, type: m.type })));
        pageToken = page.nextPageToken;
        pages++;
      } while (pageToken !== "" && pages < 20);

      const ids = seen.map((m) => m.id);
      expect(new Set(ids).size).toBe(ids.length);
      expect(ids.filter((id) => sent.includes(id))).toEqual([...sent].reverse());
      expect(seen.filter((m) => !sent.includes(m.id)).every((m) => m.type === "system")).toBe(true);
      for (let i = 1; i < seen.length; i++) expect(must(seen[i]).seq).toBeLessThan(must(seen[i - 1]).seq);
      const whole = await b.messages.listMessages({ chatId, pageSize: 200 });
      expect(whole.result.map((m) => m.id)).toEqual(ids);
      expect(whole.nextPageToken).toBe("");
    });

    it("rejects a garbage page token", async () => {
      const { a, chatId } = await pair();
      await expectCode(a.messages.listMessages({ chatId, pageToken: "garbage!" }), Code.InvalidArgument, "page_token");
    });

    it("refuses a page token on any list but its own: another talk's, the main list's or a thread's", async () => {
      const { a, b, chatId } = await pair();
      const other = (await createTalk(a, [b])).id;
      const root = await sendText(a, chatId, "root");
      for (let i = 0; i < 3; i++) {
        await sendText(a, chatId, `m${i}`);
        await sendText(b, other, `o${i}`);
        await a.messages.sendMessage({ chatId, text: `r${i}`, parentId: root.id });
      }
      const main = (await a.messages.listMessages({ chatId, pageSize: 1 })).nextPageToken;
      const thread = (await a.messages.listMessages({ chatId, parentId: root.id, pageSize: 1 })).nextPageToken;
      expect(main).not.toBe("");
      expect(thread).not.toBe("");
      await expectCode(a.messages.listMessages({ chatId: other, pageToken: main }), Code.InvalidArgument, "page_token");
      await expectCode(b.messages.listMessages({ chatId: other, pageToken: main }), Code.InvalidArgument, "page_token");
      await expectCode(a.messages.listMessages({ chatId, pageToken: thread }), Code.InvalidArgument, "page_token");
      await expectCode(a.messages.listMessages({ chatId, parentId: root.id, pageToken: main }), Code.InvalidArgument, "page_token");
      // On their own lists they page on, for any reader of the talk.
      expect((await b.messages.listMessages({ chatId, pageSize: 1, pageToken: main })).result).toHaveLength(1);
      expect((await a.messages.listMessages({ chatId, parentId: root.id, pageSize: 1, pageToken: thread })).result).toHaveLength(1);
    });
  });

  describe("UpdateMessage", () => {
    it("lets the author change the text", async () => {
      const { a, b, chatId } = await pair();
      const original = await sendText(a, chatId, "draft");
      await sleep(10);
      const updated = must((await a.messages.updateMessage({ id: original.id, text: "final" })).message);
      expect(updated).toMatchObject({ id: original.id, text: "final", seq: original.seq });
      expect(ms(updated.tmUpdate)).toBeGreaterThan(ms(original.tmUpdate));
      expect((await b.messages.getMessage({ id: original.id })).message?.text).toBe("final");
    });

    it("forbids another participant to change it", async () => {
      const { a, b, chatId } = await pair();
      const message = await sendText(a, chatId, "mine");
      await expectCode(b.messages.updateMessage({ id: message.id, text: "yours" }), Code.PermissionDenied);
      expect((await a.messages.getMessage({ id: message.id })).message?.text).toBe("mine");
    });

    it("refuses a deleted message and empty text without medias", async () => {
      const { a, chatId } = await pair();
      const plain = await sendText(a, chatId, "text only");
      await expectCode(a.messages.updateMessage({ id: plain.id, text: "" }), Code.InvalidArgument, "text");
      const withMedia = must((await a.messages.sendMessage({ chatId, text: "see file", medias: [pdf] })).message);
      expect((await a.messages.updateMessage({ id: withMedia.id, text: "" })).message?.text).toBe("");
      await a.messages.deleteMessage({ id: plain.id });
      await expectCode(a.messages.updateMessage({ id: plain.id, text: "revived" }), Code.FailedPrecondition);
    });
  });

  describe("DeleteMessage", () => {
    it("leaves a tombstone without text or medias", async () => {
      const { a, b, chatId } = await pair();
      const message = must((await a.messages.sendMessage({ chatId, text: "oops", medias: [pdf] })).message);
      const deleted = must((await a.messages.deleteMessage({ id: message.id })).message);
      expect(deleted).toMatchObject({ id: message.id, text: "", medias: [], ownerId: a.id });
      expect(ms(deleted.tmDelete)).toBeGreaterThanOrEqual(ms(message.tmCreate));
      expect(Math.abs(ms(deleted.tmDelete) - Date.now()), "tm_delete is now").toBeLessThan(60_000);
      const listed = must((await b.messages.listMessages({ chatId })).result.find((m) => m.id === message.id));
      expect(listed).toMatchObject({ text: "", medias: [] });
      expect(ms(listed.tmDelete)).toBe(ms(deleted.tmDelete));
      expect(ms((await b.messages.getMessage({ id: message.id })).message?.tmDelete)).toBe(ms(deleted.tmDelete));
    });

    it("forbids deleting another agent's message", async () => {
      const { a, b, chatId } = await pair();
      const message = await sendText(a, chatId, "keep");
      await expectCode(b.messages.deleteMessage({ id: message.id }), Code.PermissionDenied);
      const kept = must((await a.messages.getMessage({ id: message.id })).message);
      expect(kept.text).toBe("keep");
      expect(kept.tmDelete).toBeUndefined();
    });
  });
});
