import { randomUUID } from "node:crypto";
import { sql } from "kysely";
import { describe, expect, it } from "vitest";
import { Code, UUID_RE, backends, createTalk, expectCode, ms, must, newCustomer, sendText, sleep, useService } from "../support/harness.js";

describe.each(backends)("talks on %s", (backend) => {
  const env = useService(backend);

  describe("CreateTalk", () => {
    it("creates a group talk that the caller joins", async () => {
      const customer = newCustomer();
      const [a, b, c] = await Promise.all([env.agent(customer, "Ann"), env.agent(customer, "Bob"), env.agent(customer, "Cy")]);
      const before = Date.now();
      const { talk } = await a.talks.createTalk({ type: "group", name: "Q1", detail: "plans", participantIds: [b.id, c.id] });
      const created = must(talk);
      expect(created.id).toMatch(UUID_RE);
      expect(created).toMatchObject({ type: "group", name: "Q1", detail: "plans", status: "active", memberCount: 3, customerId: customer });
      expect(ms(created.tmCreate)).toBeGreaterThanOrEqual(before - 5000);
      expect(ms(created.tmCreate)).toBeLessThanOrEqual(Date.now() + 5000);
      expect(created.tmDelete).toBeUndefined();
      const { result } = await a.talks.listParticipants({ chatId: created.id });
      expect(result.map((p) => p.ownerId).sort()).toEqual([a.id, b.id, c.id].sort());
    });

    it("makes an untyped talk normal with exactly one other participant", async () => {
      const customer = newCustomer();
      const [a, b] = await Promise.all([env.agent(customer, "Ann"), env.agent(customer, "Bob")]);
      const { talk } = await a.talks.createTalk({ participantIds: [b.id] });
      expect(talk).toMatchObject({ type: "normal", memberCount: 2 });
    });

    it("makes an untyped talk a group with no or two other participants", async () => {
      const customer = newCustomer();
      const [a, b, c] = await Promise.all([env.agent(customer, "Ann"), env.agent(customer, "Bob"), env.agent(customer, "Cy")]);
      const alone = await a.talks.createTalk({});
      expect(alone.talk).toMatchObject({ type: "group", memberCount: 1 });
      const three = await a.talks.createTalk({ participantIds: [b.id, c.id] });
      expect(three.talk).toMatchObject({ type: "group", memberCount: 3 });
    });

    it("rejects an unknown type", async () => {
      const a = await env.agent(newCustomer(), "Ann");
      await expectCode(a.talks.createTalk({ type: "channel" }), Code.InvalidArgument, "type");
    });

    it("does not add the caller twice when it lists itself", async () => {
      const customer = newCustomer();
      const [a, b, c] = await Promise.all([env.agent(customer, "Ann"), env.agent(customer, "Bob"), env.agent(customer, "Cy")]);
      const group = must((await a.talks.createTalk({ type: "group", participantIds: [a.id, b.id, c.id] })).talk);
      expect(group.memberCount).toBe(3);
      const pair = must((await a.talks.createTalk({ participantIds: [a.id, b.id] })).talk);
      expect(pair).toMatchObject({ type: "normal", memberCount: 2 });
      const { result } = await a.talks.listParticipants({ chatId: pair.id });
      expect(result.map((p) => p.ownerId).sort()).toEqual([a.id, b.id].sort());
    });

    it("rejects a normal talk with more than one other participant", async () => {
      const customer = newCustomer();
      const [a, b, c] = await Promise.all([env.agent(customer, "Ann"), env.agent(customer, "Bob"), env.agent(customer, "Cy")]);
      await expectCode(a.talks.createTalk({ type: "normal", participantIds: [b.id, c.id] }), Code.InvalidArgument, "participant_ids");
    });

    it("creates a normal talk alone and lets the other agent be added later", async () => {
      const customer = newCustomer();
      const [a, b] = await Promise.all([env.agent(customer, "Ann"), env.agent(customer, "Bob")]);
      const talk = await createTalk(a, [], "normal");
      expect(talk).toMatchObject({ type: "normal", memberCount: 1 });
      await a.talks.addParticipant({ chatId: talk.id, agentId: b.id });
      expect((await b.talks.getTalk({ id: talk.id })).talk).toMatchObject({ id: talk.id, memberCount: 2 });
    });

    it("returns the existing normal talk of a pair, whichever of the two creates it", async () => {
      const customer = newCustomer();
      const [a, b] = await Promise.all([env.agent(customer, "Ann"), env.agent(customer, "Bob")]);
      const first = await createTalk(a, [b], "normal");
      const again = await createTalk(a, [b], "normal");
      const fromOther = await createTalk(b, [a], "normal");
      const untyped = must((await b.talks.createTalk({ participantIds: [a.id] })).talk);
      expect([again.id, fromOther.id, untyped.id]).toEqual([first.id, first.id, first.id]);
      expect(fromOther.memberCount).toBe(2);
    });

    it("returns one talk for concurrent normal creates from both agents", async () => {
      const customer = newCustomer();
      const [a, b] = await Promise.all([env.agent(customer, "Ann"), env.agent(customer, "Bob")]);
      const talks = await Promise.all(
        Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? createTalk(a, [b], "normal") : createTalk(b, [a], "normal"))),
      );
      expect(new Set(talks.map((t) => t.id)).size).toBe(1);
      const listed = (await a.talks.listTalks({})).result;
      expect(listed.map((t) => t.id)).toEqual([must(talks[0]).id]);
      expect(listed[0]?.memberCount).toBe(2);
    });

    it("answers NOT_FOUND for an unknown agent or another customer's agent", async () => {
      const a = await env.agent(newCustomer(), "Ann");
      const stranger = await env.agent(newCustomer(), "Stranger");
      await expectCode(a.talks.createTalk({ participantIds: [randomUUID()] }), Code.NotFound, "participant_ids");
      await expectCode(a.talks.createTalk({ type: "group", participantIds: [stranger.id] }), Code.NotFound, "participant_ids");
      expect((await a.talks.listTalks({})).result).toEqual([]);
    });

    it("rejects a participant id that is not a UUID", async () => {
      const a = await env.agent(newCustomer(), "Ann");
      await expectCode(a.talks.createTalk({ participantIds: ["bob"] }), Code.InvalidArgument, "participant_ids");
    });
  });

  describe("GetTalk and ListTalks", () => {
    it("gets a talk as created", async () => {
      const customer = newCustomer();
      const [a, b] = await Promise.all([env.agent(customer, "Ann"), env.agent(customer, "Bob")]);
      const talk = await createTalk(a, [b]);
      const fetched = must((await b.talks.getTalk({ id: talk.id })).talk);
      expect(fetched).toMatchObject({ id: talk.id, type: "group", status: "active", memberCount: 2, customerId: customer });
    });

    it("lists the caller's talks most recent activity first", async () => {
      const customer = newCustomer();
      const [a, b] = await Promise.all([env.agent(customer, "Ann"), env.agent(customer, "Bob")]);
      const t1 = await createTalk(a, [b]);
      await sleep(5);
      const t2 = await createTalk(a, []);
      await sleep(5);
      const t3 = await createTalk(a, [b]);
      await sleep(5);
      expect((await a.talks.listTalks({})).result.map((t) => t.id)).toEqual([t3.id, t2.id, t1.id]);
      expect((await b.talks.listTalks({})).result.map((t) => t.id)).toEqual([t3.id, t1.id]);
      await sendText(b, t1.id, "bump");
      expect((await a.talks.listTalks({})).result.map((t) => t.id)).toEqual([t1.id, t3.id, t2.id]);
    });

    it("pages through every talk exactly once", async () => {
      const a = await env.agent(newCustomer(), "Ann");
      const created: string[] = [];
      for (let i = 0; i < 7; i++) created.push((await createTalk(a, [])).id);
      const seen: string[] = [];
      let pageToken = "";
      let pages = 0;
      do {
        const page = await a.talks.listTalks({ pageSize: 3, pageToken });
        expect(page.result.length).toBeLessThanOrEqual(3);
        seen.push(...page.result.map((t) => t.id));
        pageToken = page.nextPageToken;
        pages++;
      } while (pageToken !== "" && pages < 10);
      expect(pages).toBe(3);
      expect([...seen].sort()).toEqual([...created].sort());
      expect(seen).toEqual((await a.talks.listTalks({})).result.map((t) => t.id));
    });

    it("pages exactly through talks whose activity differs only in microseconds", async () => {
      // The database keeps microseconds (a seed or an import writes them; the service writes
      // milliseconds): a position rounded to the millisecond would skip talks inside it.
      const a = await env.agent(newCustomer(), "Ann");
      const ids: string[] = [];
      for (let i = 0; i < 4; i++) ids.push((await createTalk(a, [])).id);
      const times = [
        "2026-01-01 00:00:00.123900+00",
        "2026-01-01 00:00:00.123500+00",
        "2026-01-01 00:00:00.123100+00",
        "2026-01-01 00:00:00.122999+00",
      ];
      for (const [i, id] of ids.entries()) {
        await sql`UPDATE talks SET tm_activity = ${times[i]}::timestamptz WHERE id = ${id}::uuid`.execute(env.service.database.db);
      }
      const seen: string[] = [];
      let pageToken = "";
      do {
        const page = await a.talks.listTalks({ pageSize: 1, pageToken });
        seen.push(...page.result.map((t) => t.id));
        pageToken = page.nextPageToken;
      } while (pageToken !== "" && seen.length < 10);
      expect(seen).toEqual(ids);
    });

    it("keeps a talk's place in its members' lists as its activity moves and as members join", async () => {
      const customer = newCustomer();
      const [a, b] = await Promise.all([env.agent(customer, "Ann"), env.agent(customer, "Bob")]);
      const t1 = await createTalk(a, []);
      await sleep(5);
      const t2 = await createTalk(b, []);
      await sleep(5);
      await sendText(a, t1.id, "bump");
      await sleep(5);
      await b.talks.addParticipant({ chatId: t2.id, agentId: a.id });
      expect((await a.talks.listTalks({})).result.map((t) => t.id)).toEqual([t2.id, t1.id]);
      await sleep(5);
      await sendText(a, t1.id, "bump again");
      const page = await a.talks.listTalks({ pageSize: 1 });
      expect(page.result.map((t) => t.id)).toEqual([t1.id]);
      expect((await a.talks.listTalks({ pageSize: 1, pageToken: page.nextPageToken })).result.map((t) => t.id)).toEqual([t2.id]);
    });

    it("orders talks whose heads moved in one send batch by their activity, page by page", async () => {
      const a = await env.agent(newCustomer(), "Ann");
      const talks: string[] = [];
      for (let i = 0; i < 4; i++) talks.push((await createTalk(a, [])).id);
      // Concurrent sends to three talks: the batcher moves their heads in one statement.
      await Promise.all(talks.slice(0, 3).map((id, i) => sendText(a, id, `m${i}`)));
      const seen: { id: string; activity: number }[] = [];
      let pageToken = "";
      do {
        const page = await a.talks.listTalks({ pageSize: 1, pageToken });
        seen.push(...page.result.map((t) => ({ id: t.id, activity: ms(t.tmActivity) })));
        pageToken = page.nextPageToken;
      } while (pageToken !== "" && seen.length < 10);
      const now = await Promise.all(talks.map(async (id) => ({ id, activity: ms(must((await a.talks.getTalk({ id })).talk).tmActivity) })));
      const expected = [...now].sort((x, y) => y.activity - x.activity || (x.id < y.id ? 1 : -1));
      expect(seen).toEqual(expected);
      expect(seen.at(-1)?.id).toBe(talks[3]);
    });

    it("uses 50 by default and clamps page_size above 200", async () => {
      const a = await env.agent(newCustomer(), "Ann");
      for (let batch = 0; batch < 11; batch++) {
        await Promise.all(Array.from({ length: batch < 10 ? 20 : 1 }, () => createTalk(a, [])));
      }
      const byDefault = await a.talks.listTalks({});
      expect(byDefault.result).toHaveLength(50);
      expect(byDefault.nextPageToken).not.toBe("");
      const clamped = await a.talks.listTalks({ pageSize: 1000 });
      expect(clamped.result).toHaveLength(200);
      expect(clamped.nextPageToken).not.toBe("");
      const rest = await a.talks.listTalks({ pageSize: 1000, pageToken: clamped.nextPageToken });
      expect(rest.result).toHaveLength(1);
      expect(rest.nextPageToken).toBe("");
    });

    it("rejects a negative page_size and a garbage page_token", async () => {
      const a = await env.agent(newCustomer(), "Ann");
      await expectCode(a.talks.listTalks({ pageSize: -1 }), Code.InvalidArgument, "page_size");
      await expectCode(a.talks.listTalks({ pageToken: "not-a-token" }), Code.InvalidArgument, "page_token");
    });

    it("refuses one agent's page token on another agent's list", async () => {
      const customer = newCustomer();
      const [a, b] = await Promise.all([env.agent(customer, "Ann"), env.agent(customer, "Bob")]);
      for (let i = 0; i < 3; i++) await createTalk(a, [b]);
      const token = (await a.talks.listTalks({ pageSize: 1 })).nextPageToken;
      expect(token).not.toBe("");
      await expectCode(b.talks.listTalks({ pageToken: token }), Code.InvalidArgument, "page_token");
      expect((await a.talks.listTalks({ pageSize: 1, pageToken: token })).result).toHaveLength(1);
    });
  });

  describe("UpdateTalk", () => {
    it("changes only the fields that are set", async () => {
      const a = await env.agent(newCustomer(), "Ann");
      const { talk } = await a.talks.createTalk({ type: "group", name: "old", detail: "old detail" });
      const id = must(talk).id;
      const renamed = must((await a.talks.updateTalk({ id, name: "new" })).talk);
      expect(renamed).toMatchObject({ name: "new", detail: "old detail" });
      const described = must((await a.talks.updateTalk({ id, detail: "" })).talk);
      expect(described).toMatchObject({ name: "new", detail: "" });
      expect((await a.talks.getTalk({ id })).talk).toMatchObject({ name: "new", detail: "" });
    });
  });

  describe("CloseTalk and ReopenTalk", () => {
    it("closes a talk to messages and participants until it is reopened", async () => {
      const customer = newCustomer();
      const [a, b, c] = await Promise.all([env.agent(customer, "Ann"), env.agent(customer, "Bob"), env.agent(customer, "Cy")]);
      const talk = await createTalk(a, [b]);
      const closed = must((await b.talks.closeTalk({ id: talk.id })).talk);
      expect(closed.status).toBe("closed");
      expect((await a.talks.getTalk({ id: talk.id })).talk?.status).toBe("closed");
      await expectCode(a.messages.sendMessage({ chatId: talk.id, text: "hi" }), Code.FailedPrecondition);
      await expectCode(a.talks.addParticipant({ chatId: talk.id, agentId: c.id }), Code.FailedPrecondition);
      await expectCode(a.talks.closeTalk({ id: talk.id }), Code.FailedPrecondition);

      const reopened = must((await a.talks.reopenTalk({ id: talk.id })).talk);
      expect(reopened.status).toBe("active");
      await expectCode(a.talks.reopenTalk({ id: talk.id }), Code.FailedPrecondition);
      expect((await sendText(a, talk.id, "back")).text).toBe("back");
      await a.talks.addParticipant({ chatId: talk.id, agentId: c.id });
    });
  });

  describe("DeleteTalk", () => {
    it("soft-deletes a talk: gone from reads, lists and its messages", async () => {
      const customer = newCustomer();
      const [a, b] = await Promise.all([env.agent(customer, "Ann"), env.agent(customer, "Bob")]);
      const talk = await createTalk(a, [b]);
      const message = await sendText(b, talk.id, "soon gone");
      const deleted = must((await a.talks.deleteTalk({ id: talk.id })).talk);
      expect(deleted.id).toBe(talk.id);
      expect(ms(deleted.tmDelete)).toBeGreaterThanOrEqual(ms(talk.tmCreate));
      expect(Math.abs(ms(deleted.tmDelete) - Date.now()), "tm_delete is now").toBeLessThan(60_000);
      for (const agent of [a, b]) {
        await expectCode(agent.talks.getTalk({ id: talk.id }), Code.NotFound);
        expect((await agent.talks.listTalks({})).result.map((t) => t.id)).not.toContain(talk.id);
        await expectCode(agent.messages.getMessage({ id: message.id }), Code.NotFound);
        await expectCode(agent.messages.listMessages({ chatId: talk.id }), Code.NotFound);
      }
      await expectCode(a.talks.deleteTalk({ id: talk.id }), Code.NotFound);
    });
  });
});
