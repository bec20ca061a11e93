/**
 * Agent ids are scoped by customer. An agent id is one row of the directory, owned by the
 * customer that entered it first: the same UUID in another customer's token is refused
 * (PERMISSION_DENIED) and changes nothing of the owner's names, memberships or directory. And
 * every store write or lookup by id also matches the customer, so that no code path can reach
 * another tenant's row by id alone (defence in depth, checked on the store directly).
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { mintToken } from "../../src/auth/tokens.js";
import type { AgentId, CustomerId, MessageId, ParticipantId, TalkId } from "../../src/domain/model/ids.js";
import { findAgent, saveAgent } from "../../src/store/agent-store.js";
import { findMessage, saveMessage } from "../../src/store/message-store.js";
import { deleteParticipant, listParticipants } from "../../src/store/participant-store.js";
import { findTalkView, saveTalk } from "../../src/store/talk-store.js";
import { Code, backends, createTalk, expectCode, must, newCustomer, sendText, useService } from "../support/harness.js";
import type { TestAgent } from "../support/harness.js";

describe.each(backends)("agent ids scoped by customer on %s", (backend) => {
  const env = useService(backend);

  /** An agent of `customerId` with a chosen id (registered by its first call when asked). */
  async function agentWithId(customerId: string, id: string, name: string, role?: "admin"): Promise<TestAgent> {
    const token = await mintToken(env.secret, { customerId, agentId: id, name, role });
    return { id, customerId, name, token, role: role ?? "agent", ...env.clients(token, "connect") };
  }

  it("the same agent UUID in a second customer's token is refused there and changes nothing in the first", async () => {
    const first = newCustomer();
    const second = newCustomer();
    const sharedId = randomUUID();
    const ann = await agentWithId(first, sharedId, "Ann");
    await ann.talks.listTalks({});
    const bob = await env.agent(first, "Bob");
    const firstAdmin = await env.agent(first, "Root", { role: "admin" });
    const talk = await createTalk(ann, [bob], "normal");
    await sendText(ann, talk.id, "hello Bob");

    const mallory = await agentWithId(second, sharedId, "Mallory");
    await expectCode(mallory.talks.listTalks({}), Code.PermissionDenied);
    await expectCode(mallory.talks.getTalk({ id: talk.id }), Code.PermissionDenied);
    await expectCode(mallory.messages.sendMessage({ chatId: talk.id, text: "hijack" }), Code.PermissionDenied);

    // The second customer's admin does not see, add, change or delete the first's agent.
    const secondAdmin = await env.agent(second, "Boss", { role: "admin" });
    await expectCode(secondAdmin.agents.getAgent({ id: sharedId }), Code.NotFound);
    expect((await secondAdmin.agents.listAgents({ pageSize: 100 })).result.map((a) => a.id)).not.toContain(sharedId);
    await expectCode(secondAdmin.agents.updateAgent({ id: sharedId, name: "Renamed" }), Code.NotFound);
    await expectCode(secondAdmin.agents.deleteAgent({ id: sharedId }), Code.NotFound);
    const theirs = await createTalk(secondAdmin, [], "group");
    await expectCode(secondAdmin.talks.addParticipant({ chatId: theirs.id, agentId: sharedId }), Code.NotFound);
    // The id is taken, so it cannot be entered a second time; the answer names nothing of the owner.
    const taken = await expectCode(secondAdmin.agents.createAgent({ id: sharedId, name: "Copy" }), Code.AlreadyExists);
    expect(taken.rawMessage).not.toContain(first);
    expect(taken.rawMessage).not.toContain("Ann");

    // The first customer's agent keeps its name, its talk and its messages.
    expect(must((await firstAdmin.agents.getAgent({ id: sharedId })).agent).name).toBe("Ann");
    expect((await ann.talks.listTalks({})).result.map((t) => t.id)).toEqual([talk.id]);
    const names = (await bob.talks.listParticipants({ chatId: talk.id })).result.map((p) => p.ownerName).sort();
    expect(names).toEqual(["Ann", "Bob"]);
    expect((await ann.messages.listMessages({ chatId: talk.id })).result.map((m) => m.text)).toContain("hello Bob");
    await sendText(ann, talk.id, "still here");
    expect((await firstAdmin.agents.listAgents({ pageSize: 100 })).result.map((a) => a.id)).toContain(sharedId);
    expect((await secondAdmin.agents.listAgents({ pageSize: 100 })).result.map((a) => a.id)).not.toContain(sharedId);
  });

  it("an id the second customer entered first is refused to the first customer's token, and stays the second's", async () => {
    const first = newCustomer();
    const second = newCustomer();
    const sharedId = randomUUID();
    const secondAdmin = await env.agent(second, "Boss", { role: "admin" });
    await secondAdmin.agents.createAgent({ id: sharedId, name: "Zed" });
    const intruder = await agentWithId(first, sharedId, "Intruder");
    await expectCode(intruder.talks.listTalks({}), Code.PermissionDenied);
    expect(must((await secondAdmin.agents.getAgent({ id: sharedId })).agent).name).toBe("Zed");
    const firstAdmin = await env.agent(first, "Root", { role: "admin" });
    await expectCode(firstAdmin.agents.getAgent({ id: sharedId }), Code.NotFound);
  });

  it("store writes and lookups by id match the customer too: another customer's id reaches nothing", async () => {
    const db = env.service.database.db;
    const owner = newCustomer() as CustomerId;
    const other = newCustomer() as CustomerId;
    const [ann, bob] = await Promise.all([env.agent(owner, "Ann"), env.agent(owner, "Bob")]);
    const talk = await createTalk(ann, [bob], "group");
    const message = await sendText(ann, talk.id, "the original");
    const talkId = talk.id as TalkId;

    const agent = must((await findAgent(db, owner, ann.id as AgentId)) ?? undefined, "agent");
    await saveAgent(db, { ...agent, customerId: other, name: "Renamed by another customer" });
    expect((await findAgent(db, owner, ann.id as AgentId))?.name).toBe("Ann");

    const view = must((await findTalkView(db, owner, talkId, ann.id as AgentId)) ?? undefined, "talk view");
    await saveTalk(db, { ...view.talk, customerId: other, name: "hijacked", status: "closed" }, undefined);
    const after = must((await findTalkView(db, owner, talkId, ann.id as AgentId)) ?? undefined, "talk view");
    expect(after.talk.name).toBe(view.talk.name);
    expect(after.talk.status).toBe("active");
    // Another customer never sees the talk, even naming an agent that takes part in it.
    expect(await findTalkView(db, other, talkId, ann.id as AgentId)).toBeNull();

    const stored = must((await findMessage(db, owner, message.id as MessageId)) ?? undefined, "message");
    await saveMessage(db, { ...stored, customerId: other, text: "hijacked" });
    expect((await findMessage(db, owner, message.id as MessageId))?.text).toBe("the original");
    expect(await findMessage(db, other, message.id as MessageId)).toBeNull();

    const participants = await listParticipants(db, talkId);
    const bobs = must(participants.find((p) => p.ownerId === bob.id));
    expect(await deleteParticipant(db, other, talkId, bobs.id as ParticipantId)).toBeNull();
    expect((await listParticipants(db, talkId)).map((p) => p.ownerName).sort()).toEqual(["Ann", "Bob"]);
    // The service still answers for the owner.
    expect((await bob.talks.getTalk({ id: talk.id })).talk?.memberCount).toBe(2);
  });
});
