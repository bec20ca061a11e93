/** The WebSocket's frames: client requests and topics parsed (positions as proto3 JSON has them), server frames built. */
import { create } from "@bufbuild/protobuf";
import { ConnectError, Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { EventSchema, HeartbeatSchema } from "../../gen/talk/v1/events_pb.js";
import { InvalidArgument, NotFound, PermissionDenied } from "../../src/domain/model/errors.js";
import type { Identity } from "../../src/domain/model/identity.js";
import type { AgentId, CustomerId } from "../../src/domain/model/ids.js";
import { toSpecJson } from "../../src/http/rest/spec-dialect.js";
import {
  ackFrame,
  checkPosition,
  errorFrame,
  eventFrame,
  heartbeatFrame,
  parseFrame,
  parseTopic,
  type SubscribeRequest,
} from "../../src/http/websocket-protocol.js";

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
      expect(
        refusal(() => parseFrame(subscribe({ after_seq: value }))),
        JSON.stringify(value),
      ).toBe("after_seq");
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
    expect(JSON.parse(heartbeatFrame(heartbeat, "t"))).toEqual({
      type: "heartbeat",
      heartbeat: { last_seq: 38, tm_create: "1970-01-01 00:00:01.000000" },
      topic: "t",
    });
    const feedBeat = create(HeartbeatSchema, { tmCreate: { seconds: 1n } });
    expect(JSON.parse(heartbeatFrame(feedBeat, "*", "cur"))).toEqual({
      type: "heartbeat",
      heartbeat: { tm_create: "1970-01-01 00:00:01.000000" },
      topic: "*",
      cursor: "cur",
    });
  });

  it("writes errors with the codes of every other edge, and the call's request id when it has one", () => {
    expect(JSON.parse(errorFrame(new NotFound("talk", "x"), "t"))).toMatchObject({ type: "error", code: "not_found", topic: "t" });
    const refused = new ConnectError("ahead", Code.OutOfRange);
    refused.metadata.set("x-request-id", "r1");
    expect(JSON.parse(errorFrame(refused))).toEqual({ type: "error", code: "out_of_range", message: "ahead", request_id: "r1" });
    expect(JSON.parse(errorFrame(new Error("secret detail")))).toEqual({ type: "error", code: "internal", message: "internal error" });
  });
});

const me = "0190a000-0000-7000-8000-00000000000a";
const myCustomer = "0190a000-0000-7000-8000-0000000000c0";
const talkId = "0190a000-0000-7000-8000-0000000000f1";
const caller: Identity = {
  agentId: me as AgentId,
  customerId: myCustomer as CustomerId,
  name: undefined,
  role: "agent",
  expiresAt: Infinity,
};

/** What a refusal says: its class, and the message a client reads in the error frame. */
function refusedWith(run: () => unknown): { kind: string; message: string } {
  try {
    run();
  } catch (error) {
    if (error instanceof InvalidArgument || error instanceof PermissionDenied) return { kind: error.kind, message: error.message };
    throw error;
  }
  throw new Error("not refused");
}
const invalid = (message: string) => ({ kind: "invalid_argument", message });

describe("parseTopic", () => {
  it("reads the caller's own agent_id and customer_id topics, ids in any case, talk ids lowercased", () => {
    expect(parseTopic(caller, `agent_id:${me}:talk_chat:${talkId}`)).toEqual({ kind: "talk", talkId });
    expect(parseTopic(caller, `agent_id:${me.toUpperCase()}:talk_chat:${talkId.toUpperCase()}`)).toEqual({ kind: "talk", talkId });
    expect(parseTopic(caller, `agent_id:${me}:talk_chat:*`)).toEqual({ kind: "all" });
    expect(parseTopic(caller, `customer_id:${myCustomer.toUpperCase()}:talk_chat:${talkId}`)).toEqual({ kind: "talk", talkId });
    // The platform's other names of the resource.
    for (const resource of ["talk", "talk_chats"]) expect(parseTopic(caller, `agent_id:${me}:${resource}:*`)).toEqual({ kind: "all" });
  });

  it("refuses a topic without exactly four parts, quoting at most 100 characters of it", () => {
    const shape = (topic: string) => invalid(`topics: "${topic}" is not <scope>:<scope_id>:talk_chat:<talk_id or *>`);
    for (const topic of ["", "*", `agent_id:${me}:talk_chat`, `agent_id:${me}:talk_chat:${talkId}:x`, `agent_id:${me}:talk_chat:*:`]) {
      expect(
        refusedWith(() => parseTopic(caller, topic)),
        topic,
      ).toEqual(shape(topic));
    }
    const long = `agent_id:${me}:talk_chat:${"x".repeat(300)}:`;
    expect(refusedWith(() => parseTopic(caller, long))).toEqual(shape(long.slice(0, 100)));
  });

  it("refuses an unknown resource or scope, quoting at most 40 characters of it", () => {
    expect(refusedWith(() => parseTopic(caller, `agent_id:${me}:talk_message:*`))).toEqual(
      invalid('topics: unknown resource "talk_message"; use talk_chat'),
    );
    expect(refusedWith(() => parseTopic(caller, `agent_id:${me}:${"r".repeat(50)}:*`))).toEqual(
      invalid(`topics: unknown resource "${"r".repeat(40)}"; use talk_chat`),
    );
    expect(refusedWith(() => parseTopic(caller, `agent_id:${me}::*`))).toEqual(invalid('topics: unknown resource ""; use talk_chat'));
    expect(refusedWith(() => parseTopic(caller, `owner_id:${me}:talk_chat:*`))).toEqual(
      invalid('topics: unknown scope "owner_id"; use agent_id or customer_id'),
    );
    expect(refusedWith(() => parseTopic(caller, `${"s".repeat(50)}:${me}:talk_chat:*`))).toEqual(
      invalid(`topics: unknown scope "${"s".repeat(40)}"; use agent_id or customer_id`),
    );
    // The resource is checked before the scope.
    expect(refusedWith(() => parseTopic(caller, "x:y:z:*"))).toEqual(invalid('topics: unknown resource "z"; use talk_chat'));
  });

  it("refuses another agent's or customer's topic, and customer-wide talk topics", () => {
    const other = "0190a000-0000-7000-8000-0000000000ee";
    expect(refusedWith(() => parseTopic(caller, `agent_id:${other}:talk_chat:${talkId}`))).toEqual({
      kind: "permission_denied",
      message: "an agent may only subscribe to its own agent_id topics",
    });
    // The customer's id is not the agent's.
    expect(refusedWith(() => parseTopic(caller, `agent_id:${myCustomer}:talk_chat:*`)).kind).toBe("permission_denied");
    expect(refusedWith(() => parseTopic(caller, `customer_id:${other}:talk_chat:${talkId}`))).toEqual({
      kind: "permission_denied",
      message: "another customer's topic",
    });
    expect(refusedWith(() => parseTopic(caller, `customer_id:${me}:talk_chat:${talkId}`)).kind).toBe("permission_denied");
    expect(refusedWith(() => parseTopic(caller, `customer_id:${myCustomer}:talk_chat:*`))).toEqual({
      kind: "permission_denied",
      message: "customer-wide talk topics are not offered; use agent_id:<id>:talk_chat:*",
    });
    // Whose topic it is comes before what it names.
    expect(refusedWith(() => parseTopic(caller, `customer_id:${other}:talk_chat:*`)).message).toBe("another customer's topic");
    expect(refusedWith(() => parseTopic(caller, `agent_id:${other}:talk_chat:nope`)).kind).toBe("permission_denied");
  });

  it("refuses a talk id that is not a UUID, quoting at most 40 characters of it", () => {
    expect(refusedWith(() => parseTopic(caller, `agent_id:${me}:talk_chat:nope`))).toEqual(invalid('topics: "nope" is not a talk id'));
    expect(refusedWith(() => parseTopic(caller, `agent_id:${me}:talk_chat:${"9".repeat(60)}`))).toEqual(
      invalid(`topics: "${"9".repeat(40)}" is not a talk id`),
    );
    expect(refusedWith(() => parseTopic(caller, `agent_id:${me}:talk_chat:`))).toEqual(invalid('topics: "" is not a talk id'));
    expect(refusedWith(() => parseTopic(caller, `agent_id:${me}:talk_chat:**`))).toEqual(invalid('topics: "**" is not a talk id'));
  });
});

describe("parseFrame, every frame a client may send", () => {
  it("reads a subscribe into its topics and positions, and an unsubscribe into its topics alone", () => {
    expect(parseFrame(JSON.stringify({ type: "subscribe", topics: ["a", "b"] }))).toEqual({
      type: "subscribe",
      topics: ["a", "b"],
      afterSeq: undefined,
      cursor: undefined,
    });
    expect(parseFrame(JSON.stringify({ type: "subscribe", topics: ["a"], after_seq: "7", cursor: "c" }))).toEqual({
      type: "subscribe",
      topics: ["a"],
      afterSeq: 7n,
      cursor: "c",
    });
    // An unsubscribe has no position: one given is not read, so not refused.
    expect(parseFrame(JSON.stringify({ type: "unsubscribe", topics: ["a"], after_seq: "x", cursor: 1 }))).toEqual({
      type: "unsubscribe",
      topics: ["a"],
    });
    // No topics is a frame that asks for nothing.
    expect(parseFrame(JSON.stringify({ type: "subscribe", topics: [] }))).toMatchObject({ type: "subscribe", topics: [] });
    // Fields the protocol does not have are ignored.
    expect(parseFrame(JSON.stringify({ type: "unsubscribe", topics: ["a"], id: 1 }))).toEqual({ type: "unsubscribe", topics: ["a"] });
  });

  it("refuses what is not a JSON object, each with its own message", () => {
    expect(refusedWith(() => parseFrame(null))).toEqual(invalid("frame: must be a JSON text frame"));
    for (const text of ["", "{", "{'type':'subscribe'}", "[".repeat(100_000)])
      expect(
        refusedWith(() => parseFrame(text)),
        text.slice(0, 20),
      ).toEqual(invalid("frame: is not JSON"));
    for (const text of ["null", "1", '"subscribe"', "true", "[]", '[{"type":"subscribe","topics":[]}]']) {
      expect(
        refusedWith(() => parseFrame(text)),
        text,
      ).toEqual(invalid("frame: must be a JSON object"));
    }
  });

  it("refuses an unknown or missing type", () => {
    for (const type of [undefined, null, "", "SUBSCRIBE", "ack", "subscribe ", 1, ["subscribe"]]) {
      expect(
        refusedWith(() => parseFrame(JSON.stringify({ type, topics: ["a"] }))),
        String(type),
      ).toEqual(invalid('type: must be "subscribe" or "unsubscribe"'));
    }
  });

  it("refuses topics that are not an array of strings", () => {
    for (const topics of [undefined, null, "a", {}, { 0: "a", length: 1 }, [1], ["a", 1], ["a", null], [["a"]]]) {
      expect(
        refusedWith(() => parseFrame(JSON.stringify({ type: "subscribe", topics }))),
        JSON.stringify(topics),
      ).toEqual(invalid("topics: must be an array of strings"));
    }
  });

  it("takes 100 topics of 200 characters, and no more", () => {
    const topics = (count: number, chars: number) => Array.from({ length: count }, (_, i) => String(i).padEnd(chars, "x"));
    expect(parseFrame(JSON.stringify({ type: "unsubscribe", topics: topics(100, 200) })).topics).toHaveLength(100);
    expect(refusedWith(() => parseFrame(JSON.stringify({ type: "unsubscribe", topics: topics(101, 1) })))).toEqual(
      invalid("topics: at most 100 topics per frame"),
    );
    const oneLong = [...topics(5, 10), "y".repeat(201)];
    expect(refusedWith(() => parseFrame(JSON.stringify({ type: "subscribe", topics: oneLong })))).toEqual(
      invalid("topics: a topic has at most 200 characters"),
    );
    // The count is checked before the lengths.
    expect(refusedWith(() => parseFrame(JSON.stringify({ type: "subscribe", topics: topics(101, 201) }))).message).toBe(
      "topics: at most 100 topics per frame",
    );
  });

  it("reads a frame's own fields only: a __proto__ key is data, an inherited field is not the frame's", () => {
    const hostile = '{"__proto__": {"type": "subscribe", "topics": ["a"]}, "topics": ["b"]}';
    expect(refusedWith(() => parseFrame(hostile))).toEqual(invalid('type: must be "subscribe" or "unsubscribe"'));
    expect(parseFrame('{"type": "subscribe", "topics": ["b"], "__proto__": {"after_seq": "x", "cursor": 5}}')).toEqual({
      type: "subscribe",
      topics: ["b"],
      afterSeq: undefined,
      cursor: undefined,
    });
    // Even with Object.prototype polluted (by a dependency, say), absent fields stay absent.
    Object.defineProperty(Object.prototype, "cursor", { value: 5, configurable: true });
    try {
      expect(parseFrame(JSON.stringify({ type: "subscribe", topics: ["b"] }))).toMatchObject({ cursor: undefined });
    } finally {
      delete (Object.prototype as Record<string, unknown>)["cursor"];
    }
    expect(({} as Record<string, unknown>)["cursor"]).toBeUndefined();
  });

  it("reads after_seq from 0 to the largest int64, as a number up to 2^53 - 1 or as up to 20 digits", () => {
    const afterSeq = (value: unknown) => (parseFrame(subscribe({ after_seq: value })) as SubscribeRequest).afterSeq;
    expect(afterSeq(Number.MAX_SAFE_INTEGER)).toBe(2n ** 53n - 1n);
    expect(afterSeq("00000000000000000042")).toBe(42n);
    expect(afterSeq("-0")).toBe(0n);
    expect(afterSeq(-0)).toBe(0n);
    expect(afterSeq("0")).toBe(0n);
  });

  it("says why an after_seq is refused", () => {
    const notInteger = invalid("after_seq: must be an integer (a JSON number or a string of digits)");
    for (const value of ["000000000000000000042", "", "x", "1.0", 1.5, Number.MAX_SAFE_INTEGER + 1, 1e300, true, false, {}, [], [1]]) {
      expect(
        refusedWith(() => parseFrame(subscribe({ after_seq: value }))),
        JSON.stringify(value),
      ).toEqual(notInteger);
    }
    for (const value of ["9223372036854775808", "99999999999999999999", "-99999999999999999999"]) {
      expect(
        refusedWith(() => parseFrame(subscribe({ after_seq: value }))),
        value,
      ).toEqual(value.startsWith("-") ? invalid("after_seq: must not be negative") : invalid("after_seq: is larger than an int64"));
    }
    for (const value of [-1, "-1", Number.MIN_SAFE_INTEGER, "-9223372036854775808"]) {
      expect(
        refusedWith(() => parseFrame(subscribe({ after_seq: value }))),
        String(value),
      ).toEqual(invalid("after_seq: must not be negative"));
    }
  });

  it('reads a cursor of up to 16 Ki characters; null and "" are no cursor', () => {
    const cursor = (value: unknown) => (parseFrame(subscribe({ cursor: value })) as SubscribeRequest).cursor;
    expect(cursor(null)).toBeUndefined();
    expect(cursor("c".repeat(16 * 1024))).toHaveLength(16 * 1024);
    expect(cursor(" ")).toBe(" ");
    expect(refusedWith(() => parseFrame(subscribe({ cursor: "c".repeat(16 * 1024 + 1) })))).toEqual(
      invalid("cursor: has at most 16384 characters"),
    );
    for (const value of [0, false, {}, ["c"]]) {
      expect(
        refusedWith(() => parseFrame(subscribe({ cursor: value }))),
        JSON.stringify(value),
      ).toEqual(invalid("cursor: must be a string: the cursor of a frame of the * topic"));
    }
  });
});

describe("checkPosition", () => {
  const request = (extra: Record<string, unknown>) => parseFrame(subscribe(extra)) as SubscribeRequest;
  it("lets either topic start at the present, and says which position belongs to which topic", () => {
    expect(() => checkPosition({ kind: "all" }, request({}))).not.toThrow();
    expect(() => checkPosition({ kind: "talk", talkId }, request({}))).not.toThrow();
    expect(() => checkPosition({ kind: "talk", talkId }, request({ after_seq: 0 }))).not.toThrow();
    expect(refusedWith(() => checkPosition({ kind: "talk", talkId }, request({ cursor: "c" })))).toEqual(
      invalid("cursor: resumes the * topic; a talk topic resumes with after_seq"),
    );
    expect(refusedWith(() => checkPosition({ kind: "all" }, request({ after_seq: 0 })))).toEqual(
      invalid("after_seq: is a talk topic's position; the * topic resumes with the cursor of its frames"),
    );
  });
});

describe("server frames, byte for byte", () => {
  it("acknowledges with the action and the topics that opened", () => {
    expect(ackFrame("subscribe", ["a", "b"])).toBe('{"type":"ack","action":"subscribe","topics":["a","b"]}');
    expect(ackFrame("unsubscribe", [])).toBe('{"type":"ack","action":"unsubscribe","topics":[]}');
  });

  it("appends the topic, and the cursor on the * topic, to the event's own JSON object", () => {
    const event = create(EventSchema, { seq: 1n, type: "talk_closed" });
    const body = JSON.stringify(toSpecJson(EventSchema, event)).slice(0, -1);
    expect(eventFrame(event, 'a"b')).toBe(`${body},"topic":"a\\"b"}`);
    expect(eventFrame(event, "*", "c\n")).toBe(`${body},"topic":"*","cursor":"c\\n"}`);
    expect(eventFrame(event, "*", "")).toBe(`${body},"topic":"*","cursor":""}`);
  });

  it("encodes an event once: later frames of the same message reuse its JSON", () => {
    const event = create(EventSchema, { seq: 1n, type: "talk_closed" });
    expect(JSON.parse(eventFrame(event, "t"))).toMatchObject({ seq: 1 });
    // Messages are never changed once published; this shows the first encoding is the one sent.
    event.seq = 2n;
    expect(JSON.parse(eventFrame(event, "u"))).toMatchObject({ seq: 1, topic: "u" });
    expect(JSON.parse(eventFrame(create(EventSchema, { seq: 2n }), "u"))).toMatchObject({ seq: 2 });
  });

  it("writes a heartbeat's last_seq first, also when it is 0, and leaves it out on the * topic", () => {
    const heartbeat = create(HeartbeatSchema, { tmCreate: { seconds: 1n, nanos: 5_000_000 } });
    expect(heartbeatFrame(heartbeat, "t")).toBe(
      '{"type":"heartbeat","heartbeat":{"last_seq":0,"tm_create":"1970-01-01 00:00:01.005000"},"topic":"t"}',
    );
    expect(heartbeatFrame(heartbeat, "*", "")).toBe(
      '{"type":"heartbeat","heartbeat":{"tm_create":"1970-01-01 00:00:01.005000"},"topic":"*","cursor":""}',
    );
  });

  it("gives an error the message a client reads on every other edge, with the topic it concerns", () => {
    expect(errorFrame(new InvalidArgument("topics", "bad"), "t")).toBe(
      '{"type":"error","code":"invalid_argument","message":"topics: bad","topic":"t"}',
    );
    expect(errorFrame(new PermissionDenied("no"))).toBe('{"type":"error","code":"permission_denied","message":"no"}');
    expect(JSON.parse(errorFrame(new ConnectError("gone", Code.Unavailable), ""))).toEqual({
      type: "error",
      code: "unavailable",
      message: "gone",
      topic: "",
    });
  });
});
