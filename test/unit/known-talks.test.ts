/**
 * KnownTalks: the send path's memory of talks (head, status, members) and of parent messages,
 * least recently used forgotten first.
 */
import { describe, expect, it } from "vitest";
import type { AgentId, MessageId, TalkId } from "../../src/domain/model/ids.js";
import { KnownTalks } from "../../src/sends/known-talks.js";
import type { Talk } from "../../src/domain/model/model.js";

const a = "agent-a" as AgentId;
const b = "agent-b" as AgentId;
const c = "agent-c" as AgentId;

function talk(id: string, lastSeq = 5): Talk {
  const at = new Date(Date.UTC(2026, 0, 1));
  return {
    id: id as TalkId,
    customerId: "customer" as Talk["customerId"],
    type: "group",
    name: id,
    detail: "",
    status: "active",
    memberCount: 2,
    lastSeq,
    tmCreate: at,
    tmUpdate: at,
    tmDelete: null,
    tmActivity: at,
  };
}

const t = (id: string) => id as TalkId;
const m = (id: string) => id as MessageId;

describe("KnownTalks", () => {
  it("knows a talk for the members it was read with, and not for others", () => {
    const known = new KnownTalks(10);
    expect(known.knows(t("t1"), a)).toBe(false);
    known.read(talk("t1"), new Set([a]));
    expect(known.knows(t("t1"), a)).toBe(true);
    expect(known.knows(t("t1"), b)).toBe(false);
    expect(known.get(t("t1"))).toEqual({ talk: talk("t1"), members: new Set([a]) });
    expect(known.get(t("t2"))).toBeUndefined();
  });

  it("merges members read at the same head, and replaces them when the head moved", () => {
    const known = new KnownTalks(10);
    known.read(talk("t1", 5), new Set([a]));
    known.read(talk("t1", 5), new Set([b]));
    expect(known.get(t("t1"))?.members).toEqual(new Set([a, b]));
    known.read(talk("t1", 6), new Set([c]));
    expect(known.get(t("t1"))?.members).toEqual(new Set([c]));
    expect(known.get(t("t1"))?.talk.lastSeq).toBe(6);
  });

  it("keeps the members when this process moved the head, and ignores a talk it did not know", () => {
    const known = new KnownTalks(10);
    known.read(talk("t1", 5), new Set([a, b]));
    known.advanced(talk("t1", 7));
    expect(known.get(t("t1"))).toEqual({ talk: talk("t1", 7), members: new Set([a, b]) });
    known.advanced(talk("t2", 3));
    expect(known.get(t("t2"))).toBeUndefined();
  });

  it("forgets a talk on request", () => {
    const known = new KnownTalks(10);
    known.read(talk("t1"), new Set([a]));
    known.forget(t("t1"));
    expect(known.get(t("t1"))).toBeUndefined();
    expect(known.knows(t("t1"), a)).toBe(false);
  });

  it("forgets the least recently used talk beyond its capacity; get and read make a talk recent", () => {
    const known = new KnownTalks(2);
    known.read(talk("t1"), new Set([a]));
    known.read(talk("t2"), new Set([a]));
    known.get(t("t1"));
    known.read(talk("t3"), new Set([a]));
    expect(known.get(t("t2"))).toBeUndefined();
    expect(known.get(t("t1"))).toBeDefined();
    expect(known.get(t("t3"))).toBeDefined();
    // t3 was used last: t1 goes next. Re-reading t1 makes it recent again.
    known.read(talk("t1", 6), new Set([a]));
    known.read(talk("t4"), new Set([a]));
    expect(known.knows(t("t3"), a)).toBe(false);
    expect(known.knows(t("t1"), a)).toBe(true);
    expect(known.knows(t("t4"), a)).toBe(true);
  });

  it("takes no room for talks it was asked about and did not know", () => {
    const known = new KnownTalks(2);
    known.read(talk("t1"), new Set([a]));
    known.read(talk("t2"), new Set([a]));
    expect(known.get(t("t3"))).toBeUndefined();
    known.advanced(talk("t1", 6));
    expect(known.knows(t("t1"), a) && known.knows(t("t2"), a)).toBe(true);
  });

  it("holds exactly its capacity", () => {
    const known = new KnownTalks(3);
    for (const id of ["t1", "t2", "t3"]) known.read(talk(id), new Set([a]));
    expect(["t1", "t2", "t3"].map((id) => known.knows(t(id), a))).toEqual([true, true, true]);
    known.advanced(talk("t1", 9));
    known.read(talk("t4"), new Set([a]));
    expect(["t1", "t2", "t3", "t4"].map((id) => known.knows(t(id), a))).toEqual([true, false, true, true]);
  });

  it("remembers parent messages' talks, least recently recorded forgotten first", () => {
    const known = new KnownTalks(2);
    expect(known.parentTalk(m("p1"))).toBeUndefined();
    known.parent(m("p1"), t("t1"));
    known.parent(m("p2"), t("t2"));
    expect(known.parentTalk(m("p1"))).toBe(t("t1"));
    expect(known.parentTalk(m("p2"))).toBe(t("t2"));
    known.parent(m("p1"), t("t1"));
    known.parent(m("p3"), t("t1"));
    expect(known.parentTalk(m("p2"))).toBeUndefined();
    expect(known.parentTalk(m("p1"))).toBe(t("t1"));
    expect(known.parentTalk(m("p3"))).toBe(t("t1"));
  });
});
