/**
 * Every curl example and tutorial request of the spec (talk-api-reference), replayed over REST
 * as written there (method, path, ?token=, Content-Type, body text) with real ids in place of
 * the placeholders; the answers are checked against the spec's response examples.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { UUID_RE, backends, newCustomer, useService } from "../support/harness.js";
import type { TestAgent } from "../support/harness.js";
import { call, curl, expectRestError, expectStatus, expectTimestamp, rest, specTimeMs } from "../support/rest-helpers.js";
import type { Json } from "../support/rest-helpers.js";

/** The spec's Talk fields (tm_delete "" until deleted, as the spec's examples show). */
function expectTalkShape(talk: Json, customerId: string): void {
  expect(talk.id).toMatch(UUID_RE);
  expect(talk.customer_id).toBe(customerId);
  expect(["normal", "group"]).toContain(talk.type);
  expectTimestamp(talk.tm_create);
  expectTimestamp(talk.tm_update);
}

function expectActive(resource: Json): void {
  expect(resource.tm_delete).toBe("");
}

function expectParticipantShape(participant: Json, customerId: string, chatId: string, ownerId: string): void {
  expect(participant.id).toMatch(UUID_RE);
  expect(participant).toMatchObject({ customer_id: customerId, owner_type: "agent", owner_id: ownerId, chat_id: chatId });
  expectTimestamp(participant.tm_joined);
}

function expectMessageShape(message: Json, customerId: string, chatId: string, ownerId: string): void {
  expect(message.id).toMatch(UUID_RE);
  expect(message).toMatchObject({ customer_id: customerId, owner_type: "agent", owner_id: ownerId, chat_id: chatId, type: "normal" });
  expect(Array.isArray(message.medias)).toBe(true);
  expect(Array.isArray(message.metadata?.reactions)).toBe(true);
  // The spec's top-level messages carry no parent_id; its replies carry the parent's id.
  expect(message.parent_id === undefined || UUID_RE.test(message.parent_id), `parent_id ${String(message.parent_id)}`).toBe(true);
  expectTimestamp(message.tm_create);
  expectTimestamp(message.tm_update);
  expectActive(message);
}

describe.each(backends)("spec REST examples on %s", (backend) => {
  const env = useService(backend);
  const url = (): string => env.service.url;

  async function people(count: number): Promise<{ customer: string; agents: TestAgent[] }> {
    const customer = newCustomer();
    const agents: TestAgent[] = [];
    for (let i = 0; i < count; i++) agents.push(await env.agent(customer, `Agent ${String.fromCharCode(65 + i)}`));
    return { customer, agents };
  }

  /** A group talk of `owner` with `others`, made over REST. */
  async function groupTalk(owner: TestAgent, others: TestAgent[]): Promise<Json> {
    const body = JSON.stringify({ type: "group", participant_ids: others.map((a) => a.id) });
    return expectStatus(await curl(url(), "POST", "/v1.0/talks", owner.token, body), 200);
  }

  describe("Creating and Managing Talks", () => {
    it("Create a Talk: name and three participant_ids make a group talk of four", async () => {
      const { customer, agents } = await people(4);
      const [a, b, c, d] = agents as [TestAgent, TestAgent, TestAgent, TestAgent];
      const body = `{
"name": "Project Discussion",
"participant_ids": [
"${b.id}",
"${c.id}",
"${d.id}"
]
}`;
      const talk = expectStatus(await curl(url(), "POST", "/v1.0/talks", a.token, body), 200);
      expectTalkShape(talk, customer);
      expectActive(talk);
      expect(talk).toMatchObject({ type: "group", name: "Project Discussion", status: "active", member_count: 4 });
      // response_body "talk": the bare Talk, not {"talk": {...}}.
      expect(talk.talk).toBeUndefined();

      const members = expectStatus(await curl(url(), "GET", `/v1.0/talks/${talk.id}/participants`, a.token), 200);
      expect(members.result.map((p: Json) => p.owner_id).sort()).toEqual([a.id, b.id, c.id, d.id].sort());
      for (const p of members.result) expectParticipantShape(p, customer, talk.id, p.owner_id);
    });

    it("Add Participant with agent_id, then Remove Participant", async () => {
      const { customer, agents } = await people(3);
      const [a, b, e] = agents as [TestAgent, TestAgent, TestAgent];
      const talk = await groupTalk(a, [b]);

      const added = expectStatus(
        await curl(
          url(),
          "POST",
          `/v1.0/talks/${talk.id}/participants`,
          a.token,
          `{
"agent_id": "${e.id}"
}`,
        ),
        200,
      );
      expectParticipantShape(added, customer, talk.id, e.id);
      expect(added.participant).toBeUndefined();
      let members = expectStatus(await curl(url(), "GET", `/v1.0/talks/${talk.id}/participants`, a.token), 200);
      expect(members.result.map((p: Json) => p.owner_id)).toContain(e.id);
      expect(expectStatus(await curl(url(), "GET", `/v1.0/talks/${talk.id}`, e.token), 200).member_count).toBe(3);

      const removed = expectStatus(await curl(url(), "DELETE", `/v1.0/talks/${talk.id}/participants/${added.id}`, a.token), 200);
      expectParticipantShape(removed, customer, talk.id, e.id);
      expect(removed.id).toBe(added.id);
      members = expectStatus(await curl(url(), "GET", `/v1.0/talks/${talk.id}/participants`, a.token), 200);
      expect(members.result.map((p: Json) => p.owner_id)).not.toContain(e.id);
      // The removed agent no longer sees the talk.
      expectRestError(await curl(url(), "GET", `/v1.0/talks/${talk.id}`, e.token), 404, "not_found");
    });

    it("GET, PUT, PATCH and DELETE a talk; list talks under /service_agents/talk_chats", async () => {
      const { customer, agents } = await people(2);
      const [a, b] = agents as [TestAgent, TestAgent];
      const talk = await groupTalk(a, [b]);

      const got = expectStatus(await curl(url(), "GET", `/v1.0/talks/${talk.id}`, b.token), 200);
      expectTalkShape(got, customer);
      expect(got).toMatchObject({ id: talk.id, member_count: 2 });
      const alias = expectStatus(await curl(url(), "GET", `/v1.0/service_agents/talk_chats/${talk.id}`, b.token), 200);
      expect(alias.id).toBe(talk.id);

      const put = expectStatus(
        await curl(url(), "PUT", `/v1.0/talks/${talk.id}`, a.token, JSON.stringify({ name: "Q1 Project", detail: "plans" })),
        200,
      );
      expect(put).toMatchObject({ id: talk.id, name: "Q1 Project", detail: "plans" });
      const patched = expectStatus(
        await curl(url(), "PATCH", `/v1.0/talks/${talk.id}`, a.token, JSON.stringify({ detail: "new plans" })),
        200,
      );
      // PATCH without name keeps the name.
      expect(patched).toMatchObject({ name: "Q1 Project", detail: "new plans" });

      const listed = expectStatus(await curl(url(), "GET", "/v1.0/service_agents/talk_chats", b.token), 200);
      expect(listed.result.map((t: Json) => t.id)).toContain(talk.id);
      expect(typeof listed.next_page_token).toBe("string");
      const listedToo = expectStatus(await curl(url(), "GET", "/v1.0/talks", b.token), 200);
      expect(listedToo.result.map((t: Json) => t.id)).toContain(talk.id);

      const deleted = expectStatus(await curl(url(), "DELETE", `/v1.0/talks/${talk.id}`, a.token), 200);
      expectTalkShape(deleted, customer);
      expectTimestamp(deleted.tm_delete);
      expectRestError(await curl(url(), "GET", `/v1.0/talks/${talk.id}`, a.token), 404, "not_found");
      const after = expectStatus(await curl(url(), "GET", "/v1.0/service_agents/talk_chats", b.token), 200);
      expect(after.result.map((t: Json) => t.id)).not.toContain(talk.id);
    });
  });

  describe("Sending Messages", () => {
    it("Basic Message, Reply to Message (Threading) and Message with Media", async () => {
      const { customer, agents } = await people(2);
      const [a, b] = agents as [TestAgent, TestAgent];
      const talk = await groupTalk(a, [b]);
      const path = `/v1.0/talks/${talk.id}/messages`;

      // The shell quoting 'let'\''s' in the spec sends "let's".
      const basic = expectStatus(
        await curl(
          url(),
          "POST",
          path,
          a.token,
          `{
"text": "Hello team, let's discuss the project status."
}`,
        ),
        200,
      );
      expectMessageShape(basic, customer, talk.id, a.id);
      expect(basic).toMatchObject({ text: "Hello team, let's discuss the project status.", medias: [], metadata: { reactions: [] } });
      expect(basic).not.toHaveProperty("parent_id");
      expect(basic.message).toBeUndefined();

      const reply = expectStatus(
        await curl(
          url(),
          "POST",
          path,
          b.token,
          `{
"text": "I agree, we should prioritize the API work.",
"parent_id": "${basic.id}"
}`,
        ),
        200,
      );
      expectMessageShape(reply, customer, talk.id, b.id);
      expect(reply).toMatchObject({ text: "I agree, we should prioritize the API work.", parent_id: basic.id });

      const media = expectStatus(
        await curl(
          url(),
          "POST",
          path,
          a.token,
          `{
"text": "Here is the design document.",
"medias": [
{
"type": "application/pdf",
"url": "https://storage.example.com/design-doc.pdf",
"name": "design-document.pdf"
}
]
}`,
        ),
        200,
      );
      expectMessageShape(media, customer, talk.id, a.id);
      expect(media.text).toBe("Here is the design document.");
      expect(media.medias).toEqual([
        { type: "application/pdf", url: "https://storage.example.com/design-doc.pdf", name: "design-document.pdf" },
      ]);

      // The thread: only the reply under the parent; the talk lists all three, newest first.
      const thread = expectStatus(await curl(url(), "GET", `${path}?parent_id=${basic.id}`, b.token), 200);
      expect(thread.result.map((m: Json) => m.id)).toEqual([reply.id]);
      const all = expectStatus(await curl(url(), "GET", path, b.token), 200);
      const normal = all.result.filter((m: Json) => m.type === "normal").map((m: Json) => m.id);
      expect(normal).toEqual([media.id, reply.id, basic.id]);
      const fetched = expectStatus(await curl(url(), "GET", `/v1.0/messages/${media.id}`, b.token), 200);
      expect(fetched.medias).toEqual(media.medias);
    });

    it("Add Reaction thumbsup; PATCH a message; DELETE a reaction with a URL-encoded emoji", async () => {
      const { customer, agents } = await people(2);
      const [a, b] = agents as [TestAgent, TestAgent];
      const talk = await groupTalk(a, [b]);
      const message = expectStatus(
        await curl(url(), "POST", `/v1.0/talks/${talk.id}/messages`, a.token, JSON.stringify({ text: "The deployment was successful!" })),
        200,
      );

      const reacted = expectStatus(
        await curl(
          url(),
          "POST",
          `/v1.0/messages/${message.id}/reactions`,
          b.token,
          `{
"emoji": "thumbsup"
}`,
        ),
        200,
      );
      expectMessageShape(reacted, customer, talk.id, a.id);
      expect(reacted.id).toBe(message.id);
      expect(reacted.metadata.reactions).toHaveLength(1);
      expect(reacted.metadata.reactions[0]).toMatchObject({ emoji: "thumbsup", owner_type: "agent", owner_id: b.id });
      expectTimestamp(reacted.metadata.reactions[0].tm_create);

      for (const emoji of ["🎉", "❤️"]) {
        expectStatus(await call(url(), "POST", `/v1.0/messages/${message.id}/reactions`, b.token, { emoji }), 200);
      }
      const three = expectStatus(await curl(url(), "GET", `/v1.0/messages/${message.id}`, a.token), 200);
      expect(three.metadata.reactions.map((r: Json) => r.emoji)).toEqual(["thumbsup", "🎉", "❤️"]);

      const removed = expectStatus(
        await curl(url(), "DELETE", `/v1.0/messages/${message.id}/reactions/${encodeURIComponent("❤️")}`, b.token),
        200,
      );
      expect(removed.metadata.reactions.map((r: Json) => r.emoji)).toEqual(["thumbsup", "🎉"]);
      const removedToo = expectStatus(
        await curl(url(), "DELETE", `/v1.0/messages/${message.id}/reactions/${encodeURIComponent("🎉")}`, b.token),
        200,
      );
      expect(removedToo.metadata.reactions.map((r: Json) => r.emoji)).toEqual(["thumbsup"]);

      const patched = expectStatus(
        await curl(
          url(),
          "PATCH",
          `/v1.0/messages/${message.id}`,
          a.token,
          JSON.stringify({ text: "The deployment was successful (v2)!" }),
        ),
        200,
      );
      expect(patched).toMatchObject({ id: message.id, text: "The deployment was successful (v2)!" });
      expect(specTimeMs(patched.tm_update)).toBeGreaterThanOrEqual(specTimeMs(message.tm_update));
      // Only the author edits.
      expectRestError(
        await curl(url(), "PATCH", `/v1.0/messages/${message.id}`, b.token, JSON.stringify({ text: "hijack" })),
        403,
        "permission_denied",
      );
      const deleted = expectStatus(await curl(url(), "DELETE", `/v1.0/messages/${message.id}`, a.token), 200);
      expectTimestamp(deleted.tm_delete);
      expect(deleted.text).toBe("");
    });
  });

  describe("Tutorial", () => {
    it("replays the tutorial: talk_chats, participants, talk_messages, reactions, list, remove, delete", async () => {
      const { customer, agents } = await people(2);
      const [owner, other] = agents as [TestAgent, TestAgent];
      const base = url();

      // Create a Talk
      const talk = expectStatus(
        await curl(
          base,
          "POST",
          "/v1.0/service_agents/talk_chats",
          owner.token,
          `{
"type": "normal"
}`,
        ),
        200,
      );
      expectTalkShape(talk, customer);
      expectActive(talk);
      expect(talk).toMatchObject({ type: "normal", member_count: 1 });

      // Add Participants
      const participant = expectStatus(
        await curl(
          base,
          "POST",
          `/v1.0/service_agents/talk_chats/${talk.id}/participants`,
          owner.token,
          `{
"owner_type": "agent",
"owner_id": "${other.id}"
}`,
        ),
        200,
      );
      expectParticipantShape(participant, customer, talk.id, other.id);

      // Send a Message
      const hello = expectStatus(
        await curl(
          base,
          "POST",
          "/v1.0/service_agents/talk_messages",
          owner.token,
          `{
"chat_id": "${talk.id}",
"type": "normal",
"text": "Hello team! Let's discuss the new feature."
}`,
        ),
        200,
      );
      expectMessageShape(hello, customer, talk.id, owner.id);
      expect(hello).toMatchObject({ text: "Hello team! Let's discuss the new feature.", medias: [], metadata: { reactions: [] } });

      // The reply the tutorial reacts to.
      const reply = expectStatus(
        await curl(
          base,
          "POST",
          "/v1.0/service_agents/talk_messages",
          other.token,
          JSON.stringify({
            chat_id: talk.id,
            type: "normal",
            text: "Great idea! I'll start working on the requirements.",
            parent_id: hello.id,
          }),
        ),
        200,
      );
      expectMessageShape(reply, customer, talk.id, other.id);
      expect(reply.parent_id).toBe(hello.id);

      // Add a Reaction
      const reacted = expectStatus(
        await curl(
          base,
          "POST",
          `/v1.0/service_agents/talk_messages/${reply.id}/reactions`,
          owner.token,
          `{
"emoji": "👍"
}`,
        ),
        200,
      );
      expectMessageShape(reacted, customer, talk.id, other.id);
      expect(reacted).toMatchObject({ id: reply.id, parent_id: hello.id, text: "Great idea! I'll start working on the requirements." });
      expect(reacted.metadata.reactions).toHaveLength(1);
      expect(reacted.metadata.reactions[0]).toMatchObject({ emoji: "👍", owner_type: "agent", owner_id: owner.id });
      expectTimestamp(reacted.metadata.reactions[0].tm_create);

      // List Messages: chat_id is required.
      expectRestError(
        await curl(base, "GET", "/v1.0/service_agents/talk_messages?page_size=50", owner.token),
        400,
        "invalid_argument",
        "chat_id",
      );
      const list = expectStatus(
        await curl(base, "GET", `/v1.0/service_agents/talk_messages?page_size=50&chat_id=${talk.id}`, owner.token),
        200,
      );
      expect(typeof list.next_page_token).toBe("string");
      const normal = list.result.filter((m: Json) => m.type === "normal");
      expect(normal.map((m: Json) => m.id)).toEqual([reply.id, hello.id]);
      for (const m of list.result) {
        expect(m.chat_id).toBe(talk.id);
        expect(m.customer_id).toBe(customer);
      }
      expect(normal[0].metadata.reactions.map((r: Json) => r.emoji)).toEqual(["👍"]);
      const one = expectStatus(await curl(base, "GET", `/v1.0/service_agents/talk_messages/${hello.id}`, other.token), 200);
      expect(one.id).toBe(hello.id);

      // Remove a Participant: here the participant leaves (allowed on every reading); the
      // creator removing the other agent of a normal talk is the next test.
      const removed = expectStatus(
        await curl(base, "DELETE", `/v1.0/service_agents/talk_chats/${talk.id}/participants/${participant.id}`, other.token),
        200,
      );
      expectParticipantShape(removed, customer, talk.id, other.id);
      expect(removed.id).toBe(participant.id);
      const members = expectStatus(await curl(base, "GET", `/v1.0/service_agents/talk_chats/${talk.id}/participants`, owner.token), 200);
      expect(members.result.map((p: Json) => p.owner_id)).toEqual([owner.id]);

      // Delete a Talk
      const deleted = expectStatus(await curl(base, "DELETE", `/v1.0/service_agents/talk_chats/${talk.id}`, owner.token), 200);
      expectTalkShape(deleted, customer);
      expect(deleted.id).toBe(talk.id);
      expectTimestamp(deleted.tm_delete);
      expect(specTimeMs(deleted.tm_update)).toBeGreaterThanOrEqual(specTimeMs(talk.tm_update));
      expectRestError(await curl(base, "GET", `/v1.0/service_agents/talk_chats/${talk.id}`, owner.token), 404, "not_found");
    });

    it("Remove a Participant as the tutorial's caller: the creator of a normal talk removes the added agent", async () => {
      // The tutorial's requests all run with one token: the creator's (it sends "Hello team!"
      // and reacts to the other agent's reply), and it removes the participant record of the
      // agent it added (owner_id 47fe0b7c...). docs/api.md allows this only in group talks.
      const { customer, agents } = await people(2);
      const [owner, other] = agents as [TestAgent, TestAgent];
      const talk = expectStatus(
        await curl(
          url(),
          "POST",
          "/v1.0/service_agents/talk_chats",
          owner.token,
          `{
"type": "normal"
}`,
        ),
        200,
      );
      const path = `/v1.0/service_agents/talk_chats/${talk.id}/participants`;
      const participant = expectStatus(
        await curl(
          url(),
          "POST",
          path,
          owner.token,
          `{
"owner_type": "agent",
"owner_id": "${other.id}"
}`,
        ),
        200,
      );
      const removed = expectStatus(await curl(url(), "DELETE", `${path}/${participant.id}`, owner.token), 200);
      expectParticipantShape(removed, customer, talk.id, other.id);
    });

    it("re-adding a removed participant creates a new record with a new id", async () => {
      const { customer, agents } = await people(3);
      const [a, b, c] = agents as [TestAgent, TestAgent, TestAgent];
      const talk = await groupTalk(a, [b]);
      const path = `/v1.0/service_agents/talk_chats/${talk.id}/participants`;
      const first = expectStatus(await curl(url(), "POST", path, a.token, JSON.stringify({ owner_type: "agent", owner_id: c.id })), 200);
      expectStatus(await curl(url(), "DELETE", `${path}/${first.id}`, a.token), 200);
      const second = expectStatus(await curl(url(), "POST", path, a.token, JSON.stringify({ owner_type: "agent", owner_id: c.id })), 200);
      expectParticipantShape(second, customer, talk.id, c.id);
      expect(second.id).not.toBe(first.id);
      expect(specTimeMs(second.tm_joined)).toBeGreaterThanOrEqual(specTimeMs(first.tm_joined));
    });
  });

  describe("agents under /v1.0/agents", () => {
    it("creates, reads, lists, updates and deletes an agent with an admin token", async () => {
      const customer = newCustomer();
      const admin = await env.agent(customer, "Admin", { role: "admin" });
      const id = randomUUID();

      const created = expectStatus(
        await curl(url(), "POST", "/v1.0/agents", admin.token, JSON.stringify({ id, name: "Zed", role: "agent" })),
        200,
      );
      expect(created).toMatchObject({ id, customer_id: customer, name: "Zed", role: "agent" });
      expectTimestamp(created.tm_create);
      expectTimestamp(created.tm_update);
      expect(created.agent).toBeUndefined();
      const made = expectStatus(await curl(url(), "POST", "/v1.0/agents", admin.token, JSON.stringify({ name: "Made" })), 200);
      expect(made.id).toMatch(UUID_RE);
      expect(made.role).toBe("agent");

      expect(expectStatus(await curl(url(), "GET", `/v1.0/agents/${id}`, admin.token), 200)).toMatchObject({ id, name: "Zed" });
      const listed = expectStatus(await curl(url(), "GET", "/v1.0/agents", admin.token), 200);
      expect(listed.result.map((a: Json) => a.id).sort()).toEqual([admin.id, id, made.id].sort());

      const put = expectStatus(await curl(url(), "PUT", `/v1.0/agents/${id}`, admin.token, JSON.stringify({ name: "Zed Two" })), 200);
      expect(put).toMatchObject({ id, name: "Zed Two", role: "agent" });
      const patched = expectStatus(await curl(url(), "PATCH", `/v1.0/agents/${id}`, admin.token, JSON.stringify({ role: "admin" })), 200);
      expect(patched).toMatchObject({ id, name: "Zed Two", role: "admin" });

      const deleted = expectStatus(await curl(url(), "DELETE", `/v1.0/agents/${id}`, admin.token), 200);
      expect(deleted.id).toBe(id);
      const afterList = expectStatus(await curl(url(), "GET", "/v1.0/agents", admin.token), 200);
      expect(afterList.result.map((a: Json) => a.id)).not.toContain(id);
      expectRestError(await curl(url(), "GET", `/v1.0/agents/${id}`, admin.token), 404, "not_found");
    });

    it("refuses directory changes without the admin role (403) and duplicate ids (409)", async () => {
      const customer = newCustomer();
      const [agent, admin] = [await env.agent(customer, "Ann"), await env.agent(customer, "Boss", { role: "admin" })];
      expectRestError(await call(url(), "POST", "/v1.0/agents", agent.token, { name: "Nope" }), 403, "permission_denied");
      expectRestError(await call(url(), "POST", "/v1.0/agents", admin.token, { id: agent.id, name: "Again" }), 409, "already_exists");
      // Reads are open to every agent.
      const listed = await rest(url(), "GET", "/v1.0/agents", { bearer: agent.token });
      expect(expectStatus(listed, 200).result.length).toBe(2);
    });
  });
});
