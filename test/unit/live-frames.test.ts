import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { afterEach, describe, expect, it, vi } from "vitest";
import { WatchEventsResponseSchema, WatchTalkResponseSchema } from "../../gen/talk/v1/talk_service_pb.js";
import type { TalkEvent } from "../../src/domain/model/events.js";
import type { AgentId, MessageId } from "../../src/domain/model/ids.js";
import {
  feedEventFrame,
  feedHeartbeatFrame,
  talkEventFrame,
  talkEventMessage,
  talkHeartbeatFrame,
  talkHeartbeatMessage,
} from "../../src/rpc/talks/live-frames.js";
import { eventToProto } from "../../src/rpc/to-proto.js";
import { agentX, customerId, talkA } from "./live-fakes.js";

/** A message_created event with every field the wire carries. */
function created(seq: number, text = "héllo"): TalkEvent {
  const at = new Date(Date.UTC(2026, 11, 2, 12, 0, seq));
  return {
    type: "message_created",
    seq,
    chatId: talkA,
    customerId,
    tmCreate: at,
    actor: { ownerType: "agent", ownerId: agentX },
    message: {
      id: `0190a3b4-0000-7000-8000-${String(seq).padStart(12, "0")}` as MessageId,
      customerId,
      ownerType: "agent",
      ownerId: agentX as AgentId,
      chatId: talkA,
      parentId: null,
      type: "normal",
      text,
      medias: [{ type: "image", url: "https://example.test/a.png", name: "a.png" }],
      reactions: [],
      clientMessageId: "c-1",
      seq,
      tmCreate: at,
      tmUpdate: at,
      tmDelete: null,
    },
  };
}

/** Splits a frame into its flag byte, its declared length and its message bytes. */
function unframe(frame: Uint8Array): { flag: number; declared: number; payload: Uint8Array } {
  const view = Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
  return { flag: view[0]!, declared: view.readUInt32BE(1), payload: frame.subarray(5) };
}

/** The frame a generic encoder would make: the envelope of the whole message's bytes, as hex. */
function envelopeOf(bytes: Uint8Array): string {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(bytes.length, 1);
  return Buffer.concat([head, bytes]).toString("hex");
}

const hex = (frame: Uint8Array) => Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength).toString("hex");

afterEach(() => {
  vi.restoreAllMocks();
});

describe("live frames", () => {
  it("gives WatchTalk's message for an event once, the same object for every watcher", () => {
    const event = created(3);
    const message = talkEventMessage(event);
    expect(message.kind.case).toBe("event");
    expect(message.kind.value).toEqual(eventToProto(event));
    expect(talkEventMessage(event)).toBe(message);
  });

  it("frames a WatchTalk event as the envelope of its message, made once per event", () => {
    const event = created(4);
    const frame = talkEventFrame(event);
    expect(hex(frame)).toBe(envelopeOf(toBinary(WatchTalkResponseSchema, talkEventMessage(event))));
    const { flag, declared, payload } = unframe(frame);
    expect(flag).toBe(0);
    expect(declared).toBe(payload.length);
    expect(fromBinary(WatchTalkResponseSchema, payload).kind).toEqual({ case: "event", value: eventToProto(event) });
    expect(talkEventFrame(event)).toBe(frame);
    // A second event is its own frame, not the first one's.
    const other = created(5, "other");
    expect(fromBinary(WatchTalkResponseSchema, unframe(talkEventFrame(other)).payload).kind.value).toEqual(eventToProto(other));
  });

  it("makes the same frames when fresh memory is not zeroed", () => {
    // Frames are built in Buffer.allocUnsafe memory: every byte must be written, the flag too.
    vi.spyOn(Buffer, "allocUnsafe").mockImplementation((size: number) => Buffer.alloc(size, 0xff));
    const event = created(6);
    const cursor = "c".repeat(200);
    expect(hex(talkEventFrame(event))).toBe(envelopeOf(toBinary(WatchTalkResponseSchema, talkEventMessage(event))));
    expect(hex(feedEventFrame(event, cursor))).toBe(
      envelopeOf(
        toBinary(
          WatchEventsResponseSchema,
          create(WatchEventsResponseSchema, { kind: { case: "event", value: eventToProto(event) }, cursor }),
        ),
      ),
    );
    expect(unframe(talkHeartbeatFrame(9)).flag).toBe(0);
    expect(unframe(feedHeartbeatFrame(cursor)).flag).toBe(0);
  });

  // The cursor's length is a varint: one byte up to 127, two up to 16,383, three beyond.
  it.each([1, 2, 127, 128, 300, 16_383, 16_384])(
    "frames a WatchEvents event with a %i-byte cursor as the envelope of { event, cursor }",
    (length) => {
      const event = created(7);
      const cursor = "x".repeat(length);
      const frame = feedEventFrame(event, cursor);
      const whole = create(WatchEventsResponseSchema, { kind: { case: "event", value: eventToProto(event) }, cursor });
      expect(hex(frame)).toBe(envelopeOf(toBinary(WatchEventsResponseSchema, whole)));
      const { flag, declared, payload } = unframe(frame);
      expect(flag).toBe(0);
      expect(declared).toBe(payload.length);
      expect(fromBinary(WatchEventsResponseSchema, payload)).toEqual(whole);
    },
  );

  it("frames a cursor's UTF-8 bytes, and an empty cursor as an empty field", () => {
    const event = created(8);
    for (const cursor of ["é".repeat(100), ""]) {
      const { declared, payload } = unframe(feedEventFrame(event, cursor));
      expect(declared).toBe(payload.length);
      const decoded = fromBinary(WatchEventsResponseSchema, payload);
      expect(decoded.cursor).toBe(cursor);
      expect(decoded.kind).toEqual({ case: "event", value: eventToProto(event) });
    }
    // Each stream's cursor goes with the same event bytes.
    const first = unframe(feedEventFrame(event, "a")).payload;
    const second = unframe(feedEventFrame(event, "b")).payload;
    expect(first.subarray(0, -1)).toEqual(second.subarray(0, -1));
    expect(fromBinary(WatchEventsResponseSchema, second).cursor).toBe("b");
  });

  it("says in WatchTalk's heartbeat how far the talk has gone, and when", () => {
    const before = Date.now();
    const message = talkHeartbeatMessage(41);
    expect(message.kind.case).toBe("heartbeat");
    if (message.kind.case !== "heartbeat") return;
    expect(message.kind.value.lastSeq).toBe(41n);
    const at = timestampDate(message.kind.value.tmCreate!).getTime();
    expect(at).toBeGreaterThanOrEqual(before - 1);
    expect(at).toBeLessThanOrEqual(Date.now() + 1);

    const { flag, declared, payload } = unframe(talkHeartbeatFrame(42));
    expect(flag).toBe(0);
    expect(declared).toBe(payload.length);
    const framed = fromBinary(WatchTalkResponseSchema, payload);
    expect(framed.kind.case).toBe("heartbeat");
    if (framed.kind.case !== "heartbeat") return;
    expect(framed.kind.value.lastSeq).toBe(42n);
    expect(timestampDate(framed.kind.value.tmCreate!).getTime()).toBeGreaterThanOrEqual(before - 1);
  });

  it("gives WatchEvents' heartbeat the stream's cursor and the time", () => {
    const before = Date.now();
    const { flag, declared, payload } = unframe(feedHeartbeatFrame("cursor-1"));
    expect(flag).toBe(0);
    expect(declared).toBe(payload.length);
    const framed = fromBinary(WatchEventsResponseSchema, payload);
    expect(framed.cursor).toBe("cursor-1");
    expect(framed.kind.case).toBe("heartbeat");
    if (framed.kind.case !== "heartbeat") return;
    expect(framed.kind.value.lastSeq).toBe(0n);
    const at = timestampDate(framed.kind.value.tmCreate!).getTime();
    expect(at).toBeGreaterThanOrEqual(before - 1);
    expect(at).toBeLessThanOrEqual(Date.now() + 1);
  });
});
