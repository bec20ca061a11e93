/** The WebSocket's frames: client requests parsed (positions as proto3 JSON has them), server frames built. */
import { create } from "@bufbuild/protobuf";
import { ConnectError, Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { EventSchema, HeartbeatSchema } from "../../gen/talk/v1/events_pb.js";
import { InvalidArgument, NotFound } from "../../src/domain/model/errors.js";
import { checkPosition, errorFrame, eventFrame, heartbeatFrame, parseFrame } from "../../src/http/websocket-protocol.js";

const subscribe = (extra: Record<string, unknown>): string => JSON.stringify({ type: "subscribe", topics: ["t"], ...extra });

function refusal(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    if (error instanceof InvalidArgument) return error.field;
    throw error;
  }
  throw new Error("not refused");
}

describe("parseFrame", () => {
  it("reads after_seq as a JSON number or a string of digits, null or absent as no position", () => {
    for (const value of [35, "35"]) expect(parseFrame(subscribe({ after_seq: value }))).toMatchObject({ afterSeq: 35n });
    expect(parseFrame(subscribe({ after_seq: "9223372036854775807" }))).toMatchObject({ afterSeq: 2n ** 63n - 1n });
    expect(parseFrame(subscribe({ after_seq: 0 }))).toMatchObject({ afterSeq: 0n });
    expect(parseFrame(subscribe({ after_seq: null }))).toMatchObject({ afterSeq: undefined });
    expect(parseFrame(subscribe({}))).toMatchObject({ afterSeq: undefined, cursor: undefined });
  });

  it("refuses any other after_seq, naming the field", () => {
    for (const value of ["x", "", " 1", "1 ", "1.5", "1e2", "+1", "0x1", "-1", -1, 1.5, 2 ** 60, "9223372036854775808", true, {}, [1]]) {
      expect(refusal(() => parseFrame(subscribe({ after_seq: value }))), JSON.stringify(value)).toBe("after_seq");
    }
  });

  it("reads a cursor as a string; an empty one is no position, anything else is refused", () => {
    expect(parseFrame(subscribe({ cursor: "abc" }))).toMatchObject({ cursor: "abc" });
    expect(parseFrame(subscribe({ cursor: "" }))).toMatchObject({ cursor: undefined });
    for (const value of [1, {}, "x".repeat(17 * 1024)]) expect(refusal(() => parseFrame(subscribe({ cursor: value })))).toBe("cursor");
  });

  it("gives a position to one kind of topic only", () => {
    const request = (extra: Record<string, unknown>) => {
      const parsed = parseFrame(subscribe(extra));
      if (parsed.type !== "subscribe") throw new Error("not a subscribe");
      return parsed;
    };
    expect(refusal(() => checkPosition({ kind: "all" }, request({ after_seq: 1 })))).toBe("after_seq");
    expect(refusal(() => checkPosition({ kind: "talk", talkId: "x" }, request({ cursor: "c" })))).toBe("cursor");
    expect(() => checkPosition({ kind: "all" }, request({ cursor: "c" }))).not.toThrow();
    expect(() => checkPosition({ kind: "talk", talkId: "x" }, request({ after_seq: "3" }))).not.toThrow();
  });
});

describe("server frames", () => {
  it("writes an event once in the spec's dialect and adds each subscriber's topic and cursor", () => {
    const event = create(EventSchema, { seq: 36n, type: "talk_closed", chatId: "c", customerId: "u" });
    const one = JSON.parse(eventFrame(event, "agent_id:a:talk_chat:c")) as Record<string, unknown>;
    const all = JSON.parse(eventFrame(event, "agent_id:a:talk_chat:*", "cur")) as Record<string, unknown>;
    expect(one).toMatchObject({ seq: 36, type: "talk_closed", chat_id: "c", topic: "agent_id:a:talk_chat:c" });
    expect(one["cursor"]).toBeUndefined();
    expect(all).toMatchObject({ seq: 36, tm_create: "", topic: "agent_id:a:talk_chat:*", cursor: "cur" });
  });

  it("writes a heartbeat in the event frames' shape: the type, its payload under the type's name, the topic", () => {
    const heartbeat = create(HeartbeatSchema, { lastSeq: 38n, tmCreate: { seconds: 1n } });
    expect(JSON.parse(heartbeatFrame(heartbeat, "t"))).toEqual({ type: "heartbeat", heartbeat: { last_seq: 38, tm_create: "1970-01-01 00:00:01.000000" }, topic: "t" });
    const feedBeat = create(HeartbeatSchema, { tmCreate: { seconds: 1n } });
    expect(JSON.parse(heartbeatFrame(feedBeat, "*", "cur"))).toEqual({ type: "heartbeat", heartbeat: { tm_create: "1970-01-01 00:00:01.000000" }, topic: "*", cursor: "cur" });
  });

  it("writes errors with the codes of every other edge, and the call's request id when it has one", () => {
    expect(JSON.parse(errorFrame(new NotFound("talk", "x"), "t"))).toMatchObject({ type: "error", code: "not_found", topic: "t" });
    const refused = new ConnectError("ahead", Code.OutOfRange);
    refused.metadata.set("x-request-id", "r1");
    expect(JSON.parse(errorFrame(refused))).toEqual({ type: "error", code: "out_of_range", message: "ahead", request_id: "r1" });
    expect(JSON.parse(errorFrame(new Error("secret detail")))).toEqual({ type: "error", code: "internal", message: "internal error" });
  });
});
