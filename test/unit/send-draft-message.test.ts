/** draftMessage: a new message as the next event of a talk change. */
import { describe, expect, it } from "vitest";
import { draftMessage } from "../../src/domain/write/draft-message.js";
import type { AgentId, CustomerId, MessageId, TalkId } from "../../src/domain/model/ids.js";
import { isUuid } from "../../src/domain/model/ids.js";
import type { Talk } from "../../src/domain/model/model.js";
import { TalkChange } from "../../src/domain/write/talk-change.js";

const at = new Date(Date.UTC(2026, 0, 1));
const later = new Date(Date.UTC(2026, 0, 2));
const agent = "a0000000-0000-4000-8000-00000000000a" as AgentId;
const talk: Talk = {
  id: "70000000-0000-4000-8000-000000000001" as TalkId,
  customerId: "c0000000-0000-4000-8000-000000000001" as CustomerId,
  type: "group",
  name: "t",
  detail: "",
  status: "active",
  memberCount: 2,
  lastSeq: 7,
  tmCreate: at,
  tmUpdate: at,
  tmDelete: null,
  tmActivity: at,
};

function change(): TalkChange {
  return new TalkChange(talk, { ownerType: "agent", ownerId: agent }, later);
}

describe("draftMessage", () => {
  it("drafts an agent's message with the talk's next seq, the change's time and the fields given", () => {
    const media = { type: "image/png", url: "https://example.com/a.png", name: "a.png" };
    const parentId = "40000000-0000-4000-8000-000000000001" as MessageId;
    const message = draftMessage(change(), agent, {
      ownerType: "agent",
      text: "hello",
      medias: [media],
      parentId,
      clientMessageId: "k1",
    });
    expect(isUuid(message.id)).toBe(true);
    expect(message).toEqual({
      id: message.id,
      customerId: talk.customerId,
      ownerType: "agent",
      ownerId: agent,
      chatId: talk.id,
      parentId,
      type: "normal",
      text: "hello",
      medias: [media],
      reactions: [],
      clientMessageId: "k1",
      seq: 8,
      tmCreate: later,
      tmUpdate: later,
      tmDelete: null,
    });
  });

  it("drafts a system message without owner, parent, medias or client id", () => {
    const message = draftMessage(change(), null, { ownerType: "system", text: "Ann joined" });
    expect(message).toMatchObject({
      ownerType: "system",
      ownerId: null,
      parentId: null,
      type: "system",
      text: "Ann joined",
      medias: [],
      clientMessageId: null,
      seq: 8,
    });
  });

  it("gives no owner to a system message even when a sender is passed", () => {
    expect(draftMessage(change(), agent, { ownerType: "system", text: "x" }).ownerId).toBeNull();
  });

  it("follows the change's seq as events are recorded, with a new id each time", () => {
    const c = change();
    const first = draftMessage(c, agent, { ownerType: "agent", text: "1", medias: [], parentId: null, clientMessageId: null });
    c.record({ type: "message_created", message: first });
    const second = draftMessage(c, agent, { ownerType: "agent", text: "2", medias: [], parentId: null, clientMessageId: null });
    expect([first.seq, second.seq]).toEqual([8, 9]);
    expect(second.id).not.toBe(first.id);
    expect(second).toMatchObject({ parentId: null, clientMessageId: null, medias: [] });
  });
});
