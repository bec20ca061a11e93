import { create, fromJson, toJson } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { EventSchema } from "../../gen/talk/v1/events_pb.js";
import { MessageMetadataSchema, MessageSchema, TalkSchema } from "../../gen/talk/v1/resources_pb.js";
import { fromSpecJson, fromSpecTime, toSpecJson, toSpecTime } from "../../src/http/rest/spec-dialect.js";

const at = (iso: string) => timestampFromDate(new Date(iso));
const specTime = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}$/;

describe("the spec's JSON dialect", () => {
  it("writes every timestamp with six fraction digits, also on a whole second (proto JSON writes none)", () => {
    expect(toSpecTime("2024-01-17T10:30:00Z")).toBe("2024-01-17 10:30:00.000000");
    expect(toSpecTime("2024-01-17T10:30:00.120Z")).toBe("2024-01-17 10:30:00.120000");
    expect(toSpecTime("2024-01-17T10:30:00.123456789Z")).toBe("2024-01-17 10:30:00.123456");
    expect(() => toSpecTime("2024-01-17 10:30:00")).toThrow();
  });

  it("a live talk: tm_delete is \"\", last_seq a number, the timestamps in the spec's form", () => {
    const talk = create(TalkSchema, {
      id: "e8b2e976-f043-44c8-bb89-e214e225e813",
      type: "normal",
      lastSeq: 42n,
      tmCreate: at("2024-01-17T10:30:00.000Z"),
      tmUpdate: at("2024-01-17T10:31:00.500Z"),
      tmActivity: at("2024-01-17T10:31:00.500Z"),
    });
    const json = toSpecJson(TalkSchema, talk);
    expect(json).toMatchObject({ tm_create: "2024-01-17 10:30:00.000000", tm_update: "2024-01-17 10:31:00.500000", tm_delete: "", last_seq: 42 });
    // Every proto field is there, in proto order, empty ones too.
    expect(Object.keys(json)).toEqual(TalkSchema.fields.map((f) => f.name));
  });

  it("a message: parent_id only on a reply, reactions' times converted, a deleted one's tm_delete set", () => {
    const top = create(MessageSchema, {
      id: "a",
      seq: 3n,
      metadata: create(MessageMetadataSchema, { reactions: [{ emoji: "👍", ownerType: "agent", ownerId: "x", tmCreate: at("2024-01-17T10:35:00Z") }] }),
      tmCreate: at("2024-01-17T10:32:00Z"),
      tmUpdate: at("2024-01-17T10:35:00Z"),
      tmDelete: at("2024-01-17T10:36:00Z"),
    });
    const json = toSpecJson(MessageSchema, top);
    expect("parent_id" in json).toBe(false);
    expect(json).toMatchObject({ seq: 3, medias: [], tm_delete: "2024-01-17 10:36:00.000000", metadata: { reactions: [{ tm_create: "2024-01-17 10:35:00.000000" }] } });
    expect(toSpecJson(MessageSchema, create(MessageSchema, { parentId: "p" }))["parent_id"]).toBe("p");
  });

  it("an event: the payload under its case, converted at depth", () => {
    const event = create(EventSchema, {
      seq: 7n,
      type: "message_created",
      tmCreate: at("2024-01-17T10:32:00Z"),
      payload: { case: "messageCreated", value: create(MessageSchema, { id: "m", tmCreate: at("2024-01-17T10:32:00Z") }) },
    });
    const json = toSpecJson(EventSchema, event);
    expect(json).toMatchObject({ seq: 7, tm_create: "2024-01-17 10:32:00.000000", message_created: { id: "m", tm_delete: "", tm_create: "2024-01-17 10:32:00.000000" } });
    expect("message_updated" in json).toBe(false);
  });

  it("reads back what it writes: the spec's timestamps and \"\" as unset", () => {
    const talk = create(TalkSchema, { id: "t", lastSeq: 9n, tmCreate: at("2024-01-17T10:30:00.250Z"), tmUpdate: at("2024-01-17T10:30:00Z") });
    const json = JSON.parse(JSON.stringify(toSpecJson(TalkSchema, talk)));
    expect(fromJson(TalkSchema, fromSpecJson(TalkSchema, json))).toEqual(talk);
    expect(toJson(TalkSchema, fromJson(TalkSchema, fromSpecJson(TalkSchema, { tm_create: "2024-01-17 10:30:00.000001" })))).toEqual({
      tmCreate: "2024-01-17T10:30:00.000001Z",
    });
    // Not the spec's form: left for the proto JSON reader to accept (RFC 3339) or refuse.
    expect(fromSpecTime("2024-01-17T10:30:00Z")).toBe("2024-01-17T10:30:00Z");
    expect(specTime.test(fromSpecTime("2024-01-17 10:30:00.000000"))).toBe(false);
  });
});
