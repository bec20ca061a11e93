/** TalkChange: seq allocation, the talk's state after the change, and the events it collects. */
import { describe, expect, it } from "vitest";
import { FailedPrecondition } from "../../src/domain/model/errors.js";
import type { AgentId, CustomerId, TalkId } from "../../src/domain/model/ids.js";
import type { Talk } from "../../src/domain/model/model.js";
import { TalkChange } from "../../src/domain/write/talk-change.js";

const created = new Date(Date.UTC(2026, 0, 1, 0, 0, 0));
const active = new Date(Date.UTC(2026, 0, 1, 0, 5, 0));
const ann = { ownerType: "agent", ownerId: "a0000000-0000-4000-8000-00000000000a" as AgentId } as const;
const system = { ownerType: "system" } as const;
const talk: Talk = {
  id: "70000000-0000-4000-8000-000000000001" as TalkId,
  customerId: "c0000000-0000-4000-8000-000000000001" as CustomerId,
  type: "group",
  name: "before",
  detail: "d",
  status: "active",
  memberCount: 2,
  lastSeq: 4,
  tmCreate: created,
  tmUpdate: created,
  tmDelete: null,
  tmActivity: active,
};

describe("TalkChange", () => {
  it("takes its time from the clock, or the talk's last activity when the clock is behind it", () => {
    const ahead = new Date(active.getTime() + 1);
    expect(new TalkChange(talk, ann, ahead).now).toBe(ahead);
    expect(new TalkChange(talk, ann, active).now).toBe(active);
    expect(new TalkChange(talk, ann, new Date(active.getTime() - 1)).now).toBe(active);
  });

  it("records events with consecutive seqs, the change's time and actor, and moves the talk's head", () => {
    const now = new Date(Date.UTC(2026, 0, 2));
    const change = new TalkChange(talk, ann, now);
    expect(change.nextSeq).toBe(5);
    expect(change.events).toEqual([]);
    const first = change.record({ type: "talk_updated", talk });
    const second = change.record({ type: "talk_closed", talk }, system);
    expect(first).toEqual({ type: "talk_updated", talk, seq: 5, chatId: talk.id, customerId: talk.customerId, tmCreate: now, actor: ann });
    expect(second).toMatchObject({ type: "talk_closed", seq: 6, actor: system });
    expect(change.events).toEqual([first, second]);
    expect(change.nextSeq).toBe(7);
    expect(change.talk).toEqual({ ...talk, lastSeq: 6, tmActivity: now });
    expect(change.pairKey).toBeUndefined();
  });

  it("updates the talk's own fields with tm_update at the change's time, leaving the head to record", () => {
    const now = new Date(Date.UTC(2026, 0, 2));
    const change = new TalkChange(talk, ann, now);
    const updated = change.updateTalk({ name: "after", status: "closed" });
    expect(updated).toEqual({ ...talk, name: "after", status: "closed", tmUpdate: now });
    expect(change.talk).toBe(updated);
    expect(change.nextSeq).toBe(5);
  });

  it("refuses changes to a closed talk and allows them to an active one", () => {
    expect(() => new TalkChange(talk, ann, active).requireActive()).not.toThrow();
    const closed = new TalkChange({ ...talk, status: "closed" }, ann, active);
    expect(() => closed.requireActive()).toThrow(FailedPrecondition);
    expect(() => closed.requireActive()).toThrow("the talk is closed; reopen it first");
  });
});
