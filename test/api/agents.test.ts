import { randomUUID } from "node:crypto";
import { describe, expect, it, vi } from "vitest";
import { Code, UUID_RE, backends, createTalk, expectCode, ms, must, newCustomer, useService } from "../support/harness.js";

describe.each(backends)("agent directory on %s", (backend) => {
  const env = useService(backend);

  it("lets an admin create, get, list, update and delete agents of its customer", async () => {
    const customer = newCustomer();
    const admin = await env.agent(customer, "Admin", { role: "admin" });
    const id = randomUUID();
    const created = must((await admin.agents.createAgent({ id, name: "Zoe" })).agent);
    expect(created).toMatchObject({ id, customerId: customer, name: "Zoe", role: "agent" });
    expect(Math.abs(ms(created.tmCreate) - Date.now()), "tm_create is now").toBeLessThan(60_000);
    expect((await admin.agents.getAgent({ id })).agent).toMatchObject({ id, name: "Zoe", role: "agent" });

    const generated = must((await admin.agents.createAgent({ name: "Al", role: "admin" })).agent);
    expect(generated.id).toMatch(UUID_RE);
    expect(generated.role).toBe("admin");

    const listed = (await admin.agents.listAgents({})).result;
    expect(listed.map((agent) => agent.name)).toEqual(["Admin", "Al", "Zoe"]);

    const renamed = must((await admin.agents.updateAgent({ id, name: "Zoë" })).agent);
    expect(renamed).toMatchObject({ name: "Zoë", role: "agent" });
    const promoted = must((await admin.agents.updateAgent({ id, role: "admin" })).agent);
    expect(promoted).toMatchObject({ name: "Zoë", role: "admin" });

    const deleted = must((await admin.agents.deleteAgent({ id })).agent);
    expect(deleted.id).toBe(id);
    await expectCode(admin.agents.getAgent({ id }), Code.NotFound);
    expect((await admin.agents.listAgents({})).result.map((agent) => agent.id)).not.toContain(id);
  });

  it("rejects an unknown role and a malformed id", async () => {
    const admin = await env.agent(newCustomer(), "Admin", { role: "admin" });
    await expectCode(admin.agents.createAgent({ name: "X", role: "owner" }), Code.InvalidArgument, "role");
    await expectCode(admin.agents.createAgent({ id: "x-1", name: "X" }), Code.InvalidArgument, "id");
    await expectCode(admin.agents.getAgent({ id: "x-1" }), Code.InvalidArgument, "id");
  });

  it("pages through agents", async () => {
    const customer = newCustomer();
    const admin = await env.agent(customer, "Admin", { role: "admin" });
    for (const name of ["B", "C", "D", "E"]) await admin.agents.createAgent({ name });
    const names: string[] = [];
    let pageToken = "";
    let pages = 0;
    do {
      const page = await admin.agents.listAgents({ pageSize: 2, pageToken });
      names.push(...page.result.map((agent) => agent.name));
      pageToken = page.nextPageToken;
      pages++;
    } while (pageToken !== "" && pages < 10);
    expect(names).toEqual(["Admin", "B", "C", "D", "E"]);
  });

  it("refuses another customer's directory page token", async () => {
    const [admin, stranger] = await Promise.all([
      env.agent(newCustomer(), "Admin", { role: "admin" }),
      env.agent(newCustomer(), "Sam", { role: "admin" }),
    ]);
    for (const name of ["B", "C"]) await admin.agents.createAgent({ name });
    const token = (await admin.agents.listAgents({ pageSize: 1 })).nextPageToken;
    expect(token).not.toBe("");
    await expectCode(stranger.agents.listAgents({ pageToken: token }), Code.InvalidArgument, "page_token");
  });

  it("lets a plain agent read the directory but not change it", async () => {
    const customer = newCustomer();
    const [admin, plain] = await Promise.all([env.agent(customer, "Admin", { role: "admin" }), env.agent(customer, "Pat")]);
    await expectCode(plain.agents.createAgent({ name: "Sneaky" }), Code.PermissionDenied);
    await expectCode(plain.agents.updateAgent({ id: admin.id, name: "Demoted" }), Code.PermissionDenied);
    await expectCode(plain.agents.updateAgent({ id: plain.id, role: "admin" }), Code.PermissionDenied);
    await expectCode(plain.agents.deleteAgent({ id: admin.id }), Code.PermissionDenied);
    expect((await plain.agents.getAgent({ id: admin.id })).agent).toMatchObject({ name: "Admin", role: "admin" });
    expect((await plain.agents.listAgents({})).result.map((agent) => agent.name)).toEqual(["Admin", "Pat"]);
  });

  it("keeps each customer's directory to itself", async () => {
    const adminX = await env.agent(newCustomer(), "Admin X", { role: "admin" });
    const agentY = await env.agent(newCustomer(), "Yan");
    await expectCode(adminX.agents.getAgent({ id: agentY.id }), Code.NotFound);
    await expectCode(adminX.agents.updateAgent({ id: agentY.id, name: "Taken" }), Code.NotFound);
    await expectCode(adminX.agents.deleteAgent({ id: agentY.id }), Code.NotFound);
    expect((await adminX.agents.listAgents({})).result.map((agent) => agent.id)).toEqual([adminX.id]);
    expect((await agentY.agents.getAgent({ id: agentY.id })).agent?.name).toBe("Yan");
  });

  it("enters a calling agent from its token", async () => {
    const customer = newCustomer();
    const admin = await env.agent(customer, "Admin", { role: "admin" });
    const fresh = await env.agent(customer, "Fresh Face", { register: false });
    await expectCode(admin.agents.getAgent({ id: fresh.id }), Code.NotFound);
    await fresh.talks.listTalks({});
    const entered = must((await admin.agents.getAgent({ id: fresh.id })).agent);
    expect(entered).toMatchObject({ id: fresh.id, customerId: customer, name: "Fresh Face", role: "agent" });
  });

  it("shuts a deleted agent out of talks and of the service", async () => {
    const customer = newCustomer();
    const [admin, gone] = await Promise.all([env.agent(customer, "Admin", { role: "admin" }), env.agent(customer, "Gone")]);
    await admin.agents.deleteAgent({ id: gone.id });
    const talk = await createTalk(admin, []);
    await expectCode(admin.talks.addParticipant({ chatId: talk.id, agentId: gone.id }), Code.NotFound);
    await expectCode(admin.talks.createTalk({ participantIds: [gone.id] }), Code.NotFound, "participant_ids");
    await expectCode(gone.talks.listTalks({}), Code.PermissionDenied);
    await expectCode(gone.talks.createTalk({}), Code.PermissionDenied);
    await expectCode(admin.agents.getAgent({ id: gone.id }), Code.NotFound);
  });

  it("a removed agent's token, naming it as it was before a rename, is refused and writes nothing", async () => {
    const customer = newCustomer();
    const [admin, gone] = await Promise.all([env.agent(customer, "Admin", { role: "admin" }), env.agent(customer, "Gone")]);
    await admin.agents.updateAgent({ id: gone.id, name: "Renamed" });
    await admin.agents.deleteAgent({ id: gone.id });
    const before = await env.snapshot([customer]);
    await expectCode(gone.talks.listTalks({}), Code.PermissionDenied);
    expect(await env.snapshot([customer])).toEqual(before);
  });

  it("refuses a deleted agent's next call on this process at once, and on another process within its recheck interval", async () => {
    const customer = newCustomer();
    const [admin, gone] = await Promise.all([env.agent(customer, "Admin", { role: "admin" }), env.agent(customer, "Gone")]);
    // The agent's last call before the deletion: this process now remembers it as entered.
    expect((await gone.talks.listTalks({})).result).toEqual([]);
    await admin.agents.deleteAgent({ id: gone.id });
    await expectCode(gone.talks.listTalks({}), Code.PermissionDenied);
    // Another process needs a shared database: the postgres run checks the rest.
    if (backend !== "postgres") return;

    // Another process that saw the agent a moment before the deletion trusts that for at most
    // callerRecheckMs, then reads the directory again.
    const recheckMs = 2000;
    const other = await env.sibling({ live: { callerRecheckMs: recheckMs } });
    const [admin2, gone2] = await Promise.all([env.agent(customer, "Admin", { role: "admin" }), env.agent(customer, "Gone 2")]);
    const goneThere = other.as(gone2);
    expect((await goneThere.talks.listTalks({})).result).toEqual([]);
    const deletedAt = Date.now();
    await admin2.agents.deleteAgent({ id: gone2.id });
    await vi.waitFor(() => expectCode(goneThere.talks.listTalks({}), Code.PermissionDenied), {
      timeout: recheckMs + 10_000,
      interval: 100,
    });
    const refusedAfter = Date.now() - deletedAt;
    // A process that kept trusting its memory (the 30 s default, or no expiry) would not get here.
    expect(refusedAfter, "refused on the other process within the recheck interval (plus slack for a loaded machine)").toBeLessThan(
      recheckMs + 10_000,
    );
  }, 60_000);

  it("names agents in system messages as the directory has them now", async () => {
    const customer = newCustomer();
    const admin = await env.agent(customer, "Admin", { role: "admin" });
    const created = must((await admin.agents.createAgent({ id: randomUUID(), name: "Rob" })).agent);
    const talk = await createTalk(admin, []);
    const first = must((await admin.talks.addParticipant({ chatId: talk.id, agentId: created.id })).participant);
    expect(first.ownerName).toBe("Rob");
    await admin.talks.removeParticipant({ chatId: talk.id, participantId: first.id });

    await admin.agents.updateAgent({ id: created.id, name: "Robert" });
    const second = must((await admin.talks.addParticipant({ chatId: talk.id, agentId: created.id })).participant);
    expect(second.ownerName).toBe("Robert");
    const { result } = await admin.messages.listMessages({ chatId: talk.id });
    expect(result.slice(0, 3).map((m) => m.text)).toEqual([
      "Robert joined the conversation.",
      "Rob left the conversation.",
      "Rob joined the conversation.",
    ]);
  });
});
