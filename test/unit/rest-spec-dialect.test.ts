import { create, createFileRegistry, fromJson, toJson, type DescFile, type DescMessage, type JsonObject } from "@bufbuild/protobuf";
import {
  FieldDescriptorProto_Label as Label,
  FieldDescriptorProto_Type as Type,
  FileDescriptorProtoSchema,
  file_google_protobuf_struct,
  file_google_protobuf_timestamp,
  timestampFromDate,
} from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { EventSchema } from "../../gen/talk/v1/events_pb.js";
import { CreateTalkRequestSchema } from "../../gen/talk/v1/talk_service_pb.js";
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

  it('a live talk: tm_delete is "", last_seq a number, the timestamps in the spec\'s form', () => {
    const talk = create(TalkSchema, {
      id: "e8b2e976-f043-44c8-bb89-e214e225e813",
      type: "normal",
      lastSeq: 42n,
      tmCreate: at("2024-01-17T10:30:00.000Z"),
      tmUpdate: at("2024-01-17T10:31:00.500Z"),
      tmActivity: at("2024-01-17T10:31:00.500Z"),
    });
    const json = toSpecJson(TalkSchema, talk);
    expect(json).toMatchObject({
      tm_create: "2024-01-17 10:30:00.000000",
      tm_update: "2024-01-17 10:31:00.500000",
      tm_delete: "",
      last_seq: 42,
    });
    // Every proto field is there, in proto order, empty ones too.
    expect(Object.keys(json)).toEqual(TalkSchema.fields.map((f) => f.name));
  });

  it("a message: parent_id only on a reply, reactions' times converted, a deleted one's tm_delete set", () => {
    const top = create(MessageSchema, {
      id: "a",
      seq: 3n,
      metadata: create(MessageMetadataSchema, {
        reactions: [{ emoji: "👍", ownerType: "agent", ownerId: "x", tmCreate: at("2024-01-17T10:35:00Z") }],
      }),
      tmCreate: at("2024-01-17T10:32:00Z"),
      tmUpdate: at("2024-01-17T10:35:00Z"),
      tmDelete: at("2024-01-17T10:36:00Z"),
    });
    const json = toSpecJson(MessageSchema, top);
    expect("parent_id" in json).toBe(false);
    expect(json).toMatchObject({
      seq: 3,
      medias: [],
      tm_delete: "2024-01-17 10:36:00.000000",
      metadata: { reactions: [{ tm_create: "2024-01-17 10:35:00.000000" }] },
    });
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
    expect(json).toMatchObject({
      seq: 7,
      tm_create: "2024-01-17 10:32:00.000000",
      message_created: { id: "m", tm_delete: "", tm_create: "2024-01-17 10:32:00.000000" },
    });
    expect("message_updated" in json).toBe(false);
  });

  it('reads back what it writes: the spec\'s timestamps and "" as unset', () => {
    const talk = create(TalkSchema, {
      id: "t",
      lastSeq: 9n,
      tmCreate: at("2024-01-17T10:30:00.250Z"),
      tmUpdate: at("2024-01-17T10:30:00Z"),
    });
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

/**
 * A message with every kind of field the mapping distinguishes, most of which no message of the
 * API has yet (lists of int64 or timestamps, maps, the other int64 types, well-known JSON types):
 * the mapping is for any message.
 */
const sampleFile = create(FileDescriptorProtoSchema, {
  name: "dialect/v1/sample.proto",
  package: "dialect.v1",
  syntax: "proto3",
  dependency: ["google/protobuf/timestamp.proto", "google/protobuf/struct.proto"],
  messageType: [
    {
      name: "Sample",
      field: [
        { name: "times", number: 1, label: Label.REPEATED, type: Type.MESSAGE, typeName: ".google.protobuf.Timestamp" },
        { name: "seqs", number: 2, label: Label.REPEATED, type: Type.INT64 },
        { name: "sizes", number: 3, label: Label.REPEATED, type: Type.UINT64 },
        { name: "small", number: 4, label: Label.OPTIONAL, type: Type.SINT64 },
        { name: "fixed", number: 5, label: Label.OPTIONAL, type: Type.FIXED64 },
        { name: "sfixed", number: 6, label: Label.OPTIONAL, type: Type.SFIXED64 },
        { name: "count", number: 7, label: Label.OPTIONAL, type: Type.INT32 },
        { name: "parts", number: 8, label: Label.REPEATED, type: Type.MESSAGE, typeName: ".dialect.v1.Sample" },
        { name: "labels", number: 9, label: Label.REPEATED, type: Type.MESSAGE, typeName: ".dialect.v1.Sample.LabelsEntry" },
        { name: "parent_id", number: 10, label: Label.OPTIONAL, type: Type.STRING },
        { name: "child", number: 11, label: Label.OPTIONAL, type: Type.MESSAGE, typeName: ".dialect.v1.Sample" },
        { name: "names", number: 12, label: Label.REPEATED, type: Type.STRING },
        { name: "maybe", number: 13, label: Label.OPTIONAL, type: Type.INT64, proto3Optional: true, oneofIndex: 0 },
        { name: "at", number: 14, label: Label.OPTIONAL, type: Type.MESSAGE, typeName: ".google.protobuf.Timestamp" },
        { name: "extra", number: 15, label: Label.OPTIONAL, type: Type.MESSAGE, typeName: ".google.protobuf.Struct" },
        { name: "value", number: 16, label: Label.OPTIONAL, type: Type.MESSAGE, typeName: ".google.protobuf.Value" },
        { name: "extras", number: 17, label: Label.REPEATED, type: Type.MESSAGE, typeName: ".google.protobuf.Struct" },
        { name: "values", number: 18, label: Label.REPEATED, type: Type.MESSAGE, typeName: ".google.protobuf.Value" },
      ],
      oneofDecl: [{ name: "_maybe" }],
      nestedType: [
        {
          name: "LabelsEntry",
          field: [
            { name: "key", number: 1, label: Label.OPTIONAL, type: Type.STRING },
            { name: "value", number: 2, label: Label.OPTIONAL, type: Type.STRING },
          ],
          options: { mapEntry: true },
        },
      ],
    },
  ],
});
const imports: Record<string, DescFile> = {
  "google/protobuf/timestamp.proto": file_google_protobuf_timestamp,
  "google/protobuf/struct.proto": file_google_protobuf_struct,
};
const SampleSchema = createFileRegistry(sampleFile, (name) => imports[name]).getMessage("dialect.v1.Sample") as DescMessage;
/** A Sample with nothing set, as the dialect writes it: every implicit field, unset timestamps "". */
const emptySample = {
  times: [],
  seqs: [],
  sizes: [],
  small: 0,
  fixed: 0,
  sfixed: 0,
  count: 0,
  parts: [],
  labels: {},
  parent_id: "",
  names: [],
  at: "",
  extras: [],
  values: [],
};
const sample = (json: JsonObject): JsonObject => toSpecJson(SampleSchema, fromJson(SampleSchema, json));

describe("the spec's dialect for any message", () => {
  it("writes every int64 kind as a number when it is one exactly, else as proto JSON's string", () => {
    expect(
      sample({
        seqs: [
          "0",
          "-1",
          "9007199254740991",
          "9007199254740992",
          "-9007199254740991",
          "-9007199254740992",
          "-9223372036854775808",
          "9223372036854775807",
        ],
        sizes: ["18446744073709551615", "1"],
        small: "-5",
        fixed: "7",
        sfixed: "-9223372036854775808",
        count: -3,
      }),
    ).toEqual({
      ...emptySample,
      seqs: [
        0,
        -1,
        9007199254740991,
        "9007199254740992",
        -9007199254740991,
        "-9007199254740992",
        "-9223372036854775808",
        "9223372036854775807",
      ],
      sizes: ["18446744073709551615", 1],
      small: -5,
      fixed: 7,
      sfixed: "-9223372036854775808",
      count: -3,
    });
  });

  it('leaves strings that look like numbers as strings, and parent_id "" on any other message', () => {
    expect(sample({ names: ["12", "-1", "x"], parent_id: "42" })).toEqual({ ...emptySample, names: ["12", "-1", "x"], parent_id: "42" });
    expect(toSpecJson(MessageSchema, create(MessageSchema, { text: "42", parentId: "7" }))).toMatchObject({ text: "42", parent_id: "7" });
  });

  it("writes a proto3 optional int64 when set (also to 0) and leaves it out when not", () => {
    expect(sample({})).toEqual(emptySample);
    expect(sample({ maybe: "0" })).toEqual({ ...emptySample, maybe: 0 });
    expect(sample({ maybe: "12" })).toEqual({ ...emptySample, maybe: 12 });
  });

  it("converts lists of timestamps and of messages, and messages at any depth", () => {
    expect(
      sample({
        times: ["2024-01-17T10:30:00.5Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999Z"],
        at: "1970-01-01T00:00:00.000001Z",
        parts: [{ seqs: ["1"], at: "2024-01-17T10:30:00Z" }, {}],
        child: { small: "5", child: { times: ["2024-01-17T10:30:00.010Z"] } },
      }),
    ).toEqual({
      ...emptySample,
      times: ["2024-01-17 10:30:00.500000", "0001-01-01 00:00:00.000000", "9999-12-31 23:59:59.999999"],
      at: "1970-01-01 00:00:00.000001",
      parts: [{ ...emptySample, seqs: [1], at: "2024-01-17 10:30:00.000000" }, emptySample],
      child: { ...emptySample, small: 5, child: { ...emptySample, times: ["2024-01-17 10:30:00.010000"] } },
    });
  });

  it("keeps maps and the well-known types that have a JSON form of their own (Struct, Value) as proto JSON writes them", () => {
    const struct = { a: 1, b: [1, "x", null], c: { d: "e" } };
    expect(sample({ labels: { k: "12", "": "" }, extra: struct, extras: [struct, {}], value: struct })).toEqual({
      ...emptySample,
      labels: { k: "12", "": "" },
      extra: struct,
      extras: [struct, {}],
      value: struct,
    });
    // A list item written as a string is a timestamp only in a list of timestamps.
    expect(sample({ values: ["2024-01-17T10:30:00Z", "x", 1, struct] })).toEqual({
      ...emptySample,
      values: ["2024-01-17T10:30:00Z", "x", 1, struct],
    });
    expect(sample({ value: null })).toEqual({ ...emptySample, value: null });
    expect(sample({ value: [1, "2"] })).toEqual({ ...emptySample, value: [1, "2"] });
    expect(sample({ value: "2024-01-17T10:30:00Z" })).toEqual({ ...emptySample, value: "2024-01-17T10:30:00Z" });
  });
});

describe("toSpecTime and fromSpecTime", () => {
  it("pads and truncates the fraction to six digits, keeping the date and time as UTC gives them", () => {
    expect(toSpecTime("2024-01-17T10:30:00.5Z")).toBe("2024-01-17 10:30:00.500000");
    expect(toSpecTime("2024-01-17T10:30:00.000001Z")).toBe("2024-01-17 10:30:00.000001");
    expect(toSpecTime("2024-01-17T10:30:00.000000999Z")).toBe("2024-01-17 10:30:00.000000");
    expect(toSpecTime("0001-01-01T00:00:00Z")).toBe("0001-01-01 00:00:00.000000");
    // Whatever the process's time zone, proto JSON's time is UTC and is written as it is.
    expect(toSpecJson(TalkSchema, create(TalkSchema, { tmCreate: at("2024-12-31T23:59:59.999Z") }))["tm_create"]).toBe(
      "2024-12-31 23:59:59.999000",
    );
  });

  it("refuses a value that is not proto JSON's UTC timestamp, naming it", () => {
    for (const value of [
      "2024-01-17T10:30:00+01:00",
      "2024-01-17T10:30:00",
      "2024-01-17T10:30:00.Z",
      "2024-01-17T10:30:00.1234567890Z",
      "x2024-01-17T10:30:00Z",
      "2024-01-17T10:30:00Zx",
      "",
    ]) {
      expect(() => toSpecTime(value), value).toThrow(new Error(`not a proto JSON timestamp: ${value}`));
    }
  });

  it("reads the spec's form as RFC 3339 UTC, and leaves any other text for the proto JSON reader", () => {
    expect(fromSpecTime("2024-01-17 10:30:00.123456")).toBe("2024-01-17T10:30:00.123456Z");
    expect(fromSpecTime("0001-01-01 00:00:00.000000")).toBe("0001-01-01T00:00:00.000000Z");
    for (const value of [
      "2024-01-17 10:30:00",
      "2024-01-17 10:30:00.123",
      "2024-01-17 10:30:00.1234567",
      " 2024-01-17 10:30:00.000000",
      "2024-01-17 10:30:00.000000 ",
      "",
    ]) {
      expect(fromSpecTime(value), value).toBe(value);
    }
  });
});

describe("fromSpecJson", () => {
  it('reads a timestamp under its proto name or its JSON name; "" is unset', () => {
    expect(fromSpecJson(TalkSchema, { tmCreate: "2024-01-17 10:30:00.000001", tmDelete: "", tm_update: "2024-01-17 10:30:00.5" })).toEqual({
      tmCreate: "2024-01-17T10:30:00.000001Z",
      tm_update: "2024-01-17 10:30:00.5",
    });
    expect(fromJson(TalkSchema, fromSpecJson(TalkSchema, { tm_delete: "" })).tmDelete).toBeUndefined();
  });

  it("converts at depth, in messages and in lists of messages, and leaves what is not an object for the reader", () => {
    const json: JsonObject = {
      seq: 3,
      message_created: {
        tm_create: "2024-01-17 10:32:00.000000",
        metadata: { reactions: [{ tm_create: "2024-01-17 10:35:00.000000" }, null, 1] },
      },
    };
    expect(fromSpecJson(EventSchema, json)).toEqual({
      seq: 3,
      message_created: {
        tm_create: "2024-01-17T10:32:00.000000Z",
        metadata: { reactions: [{ tm_create: "2024-01-17T10:35:00.000000Z" }, null, 1] },
      },
    });
    const specTimeText = "2024-01-17 10:32:00.000000";
    const misshapen: JsonObject[] = [
      { message_created: null },
      { message_created: "x" },
      { message_created: [] },
      { message_created: [{ tm_create: specTimeText }] },
      { message_created: { medias: "x" } },
      { message_created: { medias: [1, null] } },
      { message_created: { text: { tm_create: "" } } },
      { seq: {} },
      { seq: [{ tm_create: "" }] },
      // Not a string, though it reads as one: the reader refuses it.
      { tm_create: [specTimeText] },
      { tm_create: 5 },
      { tm_create: null },
      { undefined: "" },
      { undefined: specTimeText },
    ];
    for (const body of misshapen) expect(fromSpecJson(EventSchema, structuredClone(body)), JSON.stringify(body)).toEqual(body);
    expect(fromSpecJson(CreateTalkRequestSchema, { participant_ids: [{ tm_create: "" }, "a"] })).toEqual({
      participant_ids: [{ tm_create: "" }, "a"],
    });
  });

  it("walks the request message's fields only: other keys, __proto__ too, are left for the reader to refuse", () => {
    const json = JSON.parse(
      '{"__proto__": {"tm_create": "2024-01-17 10:30:00.000000"}, "other": {"tm_create": ""}, "participant_ids": [{"tm_create": ""}]}',
    ) as JsonObject;
    const copy = structuredClone(json);
    expect(fromSpecJson(TalkSchema, json)).toEqual(copy);
    expect(Object.getPrototypeOf(json)).toBe(Object.prototype);
  });
});
