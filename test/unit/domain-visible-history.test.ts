/** Which part of a talk's history a participant may read. */
import { describe, expect, it } from "vitest";
import type { TalkEvent } from "../../src/domain/model/events.js";
import type { AgentId, CustomerId, MessageId, TalkId } from "../../src/domain/model/ids.js";
import type { Message, Talk } from "../../src/domain/model/model.js";
import { eventVisible, historyStartSeq, openingLastSeq } from "../../src/domain/model/visible-history.js";

const at = new Date(Date.UTC(2026, 0, 1));
const chatId = "70000000-0000-4000-8000-000000000001" as TalkId;
const customerId = "c0000000-0000-4000-8000-000000000001" as CustomerId;
const actor = { ownerType: "agent", ownerId: "a0000000-0000-4000-8000-00000000000a" as AgentId } as const;

function message(seq: number): Message {
  return {
    id: "40000000-0000-4000-8000-000000000001" as MessageId,
    customerId,
    ownerType: "agent",
    ownerId: actor.ownerId,
    chatId,
    parentId: null,
    type: "normal",
    text: "x",
    medias: [],
    reactions: [],
    clientMessageId: null,
    seq,
    tmCreate: at,
    tmUpdate: at,
    tmDelete: null,
  };
}

const talk = { id: chatId, customerId } as Talk;
const header = (seq: number) => ({ seq, chatId, customerId, tmCreate: at, actor });

describe("historyStartSeq", () => {
  it("starts a normal talk's history at a later join, and at 1 for the opening joins", () => {
    expect(openingLastSeq).toBe(2);
    expect(historyStartSeq("normal", 1)).toBe(1);
    expect(historyStartSeq("normal", 3)).toBe(1);
    expect(historyStartSeq("normal", 4)).toBe(4);
    expect(historyStartSeq("normal", 40)).toBe(40);
  });

  it("gives every participant of a group talk the whole history", () => {
    expect(historyStartSeq("group", 4)).toBe(1);
    expect(historyStartSeq("group", 40)).toBe(1);
  });
});

describe("eventVisible", () => {
  it("shows events from the start on, not before", () => {
    const event: TalkEvent = { ...header(5), type: "talk_updated", talk };
    expect(eventVisible(event, 5)).toBe(true);
    expect(eventVisible(event, 4)).toBe(true);
    expect(eventVisible(event, 6)).toBe(false);
  });

  it("hides a later change to a message from before the start", () => {
    const edit = (messageSeq: number): TalkEvent => ({ ...header(9), type: "message_updated", message: message(messageSeq) });
    expect(eventVisible(edit(6), 6)).toBe(true);
    expect(eventVisible(edit(7), 6)).toBe(true);
    expect(eventVisible(edit(5), 6)).toBe(false);
    const reaction: TalkEvent = {
      ...header(9),
      type: "reaction_added",
      reaction: { emoji: "x", ownerType: "agent", ownerId: actor.ownerId, tmCreate: at },
      message: message(2),
    };
    expect(eventVisible(reaction, 3)).toBe(false);
    expect(eventVisible(reaction, 1)).toBe(true);
  });
});
