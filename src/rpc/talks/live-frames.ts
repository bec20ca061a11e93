/**
 * The bytes of WatchTalk and WatchEvents responses, made once per event and shared by every
 * stream that sends it: the talk's feed hands the same event object to all of its watchers.
 * A frame is the length-prefixed message that gRPC and the Connect streaming protocol (binary)
 * both send: one flag byte (0), a 4-byte big-endian length, the message.
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { HeartbeatSchema } from "../../../gen/talk/v1/events_pb.js";
import { WatchEventsResponseSchema, WatchTalkResponseSchema, type WatchTalkResponse } from "../../../gen/talk/v1/talk_service_pb.js";
import type { TalkEvent } from "../../domain/model/events.js";
import { eventToProto } from "../to-proto.js";

interface Encoded {
  /** WatchTalkResponse { event } as a message, for consumers that take messages. */
  message?: WatchTalkResponse;
  /**
   * `kind.event = <event>` (field 1) encoded: the whole of WatchTalkResponse { event }, and the
   * first part of WatchEventsResponse { event, cursor }, whose event field has the same number.
   */
  field?: Uint8Array;
  /** The enveloped WatchTalk frame. */
  talkFrame?: Uint8Array;
}

const encodings = new WeakMap<TalkEvent, Encoded>();

function encodedOf(event: TalkEvent): Encoded {
  let encoded = encodings.get(event);
  if (encoded === undefined) {
    encoded = {};
    encodings.set(event, encoded);
  }
  return encoded;
}

/** WatchTalkResponse { event }, one object per event. */
export function talkEventMessage(event: TalkEvent): WatchTalkResponse {
  const encoded = encodedOf(event);
  encoded.message ??= create(WatchTalkResponseSchema, { kind: { case: "event", value: eventToProto(event) } });
  return encoded.message;
}

function eventField(event: TalkEvent): Uint8Array {
  const encoded = encodedOf(event);
  encoded.field ??= toBinary(WatchTalkResponseSchema, talkEventMessage(event));
  return encoded.field;
}

/** One frame of `parts`, concatenated: protobuf fields encoded apart make one message together. */
function frameOf(...parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const bytes = Buffer.allocUnsafe(5 + length);
  bytes[0] = 0;
  bytes.writeUInt32BE(length, 1);
  let at = 5;
  for (const part of parts) {
    bytes.set(part, at);
    at += part.length;
  }
  return bytes;
}

/** WatchTalk's frame for an event, made once. */
export function talkEventFrame(event: TalkEvent): Uint8Array {
  const encoded = encodedOf(event);
  encoded.talkFrame ??= frameOf(eventField(event));
  return encoded.talkFrame;
}

export function talkHeartbeatMessage(lastSeq: number): WatchTalkResponse {
  return create(WatchTalkResponseSchema, {
    kind: { case: "heartbeat", value: create(HeartbeatSchema, { lastSeq: BigInt(lastSeq), tmCreate: timestampNow() }) },
  });
}

export function talkHeartbeatFrame(lastSeq: number): Uint8Array {
  return frameOf(toBinary(WatchTalkResponseSchema, talkHeartbeatMessage(lastSeq)));
}

/** `cursor = <cursor>` (field 3, length-delimited) encoded: the per-stream part of a WatchEvents frame. */
function cursorField(cursor: string): Uint8Array {
  const length = Buffer.byteLength(cursor);
  let varint = 1;
  for (let rest = length >>> 7; rest > 0; rest >>>= 7) varint++;
  const bytes = Buffer.allocUnsafe(1 + varint + length);
  bytes[0] = (3 << 3) | 2;
  let at = 1;
  let rest = length;
  while (rest > 0x7f) {
    bytes[at++] = (rest & 0x7f) | 0x80;
    rest >>>= 7;
  }
  bytes[at++] = rest;
  bytes.write(cursor, at, "utf8");
  return bytes;
}

/** WatchEvents' frame for an event: the event's shared bytes and this stream's cursor. */
export function feedEventFrame(event: TalkEvent, cursor: string): Uint8Array {
  return frameOf(eventField(event), cursorField(cursor));
}

export function feedHeartbeatFrame(cursor: string): Uint8Array {
  return frameOf(
    toBinary(
      WatchEventsResponseSchema,
      create(WatchEventsResponseSchema, {
        kind: { case: "heartbeat", value: create(HeartbeatSchema, { tmCreate: timestampNow() }) },
        cursor,
      }),
    ),
  );
}
