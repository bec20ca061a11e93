/** The event codec: one encoding per event, shared by the log row and the bus message. */
import { describe, expect, it } from "vitest";
import { decodeEvent, encodeEvent, EncodedEvent } from "../../src/bus/event-codec.js";
import type { TalkEvent } from "../../src/domain/model/events.js";
import type { AgentId, CustomerId, MessageId, ParticipantId, TalkId } from "../../src/domain/model/ids.js";
import { eventRow } from "../../src/store/event-store.js";

const at = new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 678));
const later = new Date(at.getTime() + 1000);
const talkId = "70000000-0000-4000-8000-000000000001" as TalkId;
const customerId = "c0000000-0000-4000-8000-000000000001" as CustomerId;
const ann = "a0000000-0000-4000-8000-00000000000a" as AgentId;

const created: TalkEvent = {
  type: "message_created",
  seq: 7,
  chatId: talkId,
  customerId,
  tmCreate: at,
  actor: { ownerType: "agent", ownerId: ann },
  message: {
    id: "01900000-0000-7000-8000-000000000001" as MessageId,
    customerId,
    ownerType: "agent",
    ownerId: ann,
    chatId: talkId,
    parentId: null,
    type: "normal",
    text: 'quotes " and \\ and ünïcode, {"not": "json"}',
    medias: [{ type: "image", url: "https://example.com/a.png", name: "a.png" }],
    reactions: [],
    clientMessageId: "c-1",
    seq: 7,
    tmCreate: at,
    tmUpdate: later,
    tmDelete: null,
  },
};

const joined: TalkEvent = {
  type: "participant_joined",
  seq: 1,
  chatId: talkId,
  customerId,
  tmCreate: at,
  actor: { ownerType: "system" },
  participant: {
    id: "90000000-0000-4000-8000-000000000001" as ParticipantId,
    customerId,
    ownerType: "agent",
    ownerId: ann,
    chatId: talkId,
    ownerName: "Ann",
    joinedSeq: 1,
    tmJoined: at,
  },
  talk: {
    id: talkId,
    customerId,
    type: "group",
    name: "t",
    detail: "",
    status: "active",
    memberCount: 1,
    lastSeq: 1,
    tmCreate: at,
    tmUpdate: at,
    tmDelete: null,
    tmActivity: at,
  },
};

describe("event codec", () => {
  it.each([created, joined])("a $type event's bus text decodes to the event, Dates revived", (event) => {
    const decoded = decodeEvent(encodeEvent(event).text);
    expect(decoded).toEqual(event);
    expect(decoded.tmCreate).toBeInstanceOf(Date);
  });

  it("puts the body in the payload, without the envelope the row's columns hold", () => {
    const body = JSON.parse(encodeEvent(created).payload) as Record<string, unknown>;
    expect(Object.keys(body)).toEqual(["message"]);
  });

  it("the log row stores the encoding it is given, and the bus text carries those same bytes", () => {
    // A payload the event itself would not encode to: had the row encoded the event again, it
    // would differ.
    const given = new EncodedEvent(created, '{"message":{"id":"given"}}');
    expect(eventRow(given).payload).toBe(given.payload);
    expect(given.text.endsWith(',"message":{"id":"given"}}')).toBe(true);
    expect(JSON.parse(given.text)).toMatchObject({ type: "message_created", seq: 7, chatId: talkId, message: { id: "given" } });
  });

  it("a row from a plain event has the payload its encoding has", () => {
    expect(eventRow(created)).toMatchObject({
      chat_id: talkId,
      seq: 7,
      type: "message_created",
      actor_id: ann,
      payload: encodeEvent(created).payload,
    });
  });
});
