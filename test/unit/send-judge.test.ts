/**
 * judgeSend: the rules of a send, shared by the batch planner and the locking path. Each rule
 * and the order they apply in; the error values carry the code and text both paths answer.
 */
import { describe, expect, it } from "vitest";
import type { AgentId } from "../../src/domain/model/ids.js";
import type { Message, Talk } from "../../src/domain/model/model.js";
import { judgeSend, type SendFacts, type SendVerdict } from "../../src/sends/judge-send.js";
import type { KnownTalk } from "../../src/sends/known-talks.js";
import type { SendRequest } from "../../src/sends/send-request.js";
import { ann, bob, groupTalk, mid, otherCustomer, tid } from "./send-fixtures.js";

const talkId = tid(1);
const otherTalk = tid(2);
const parentId = mid(1);

function known(fields: Partial<Talk> = {}, members: readonly AgentId[] = [ann.agentId]): KnownTalk {
  return { talk: groupTalk(talkId, fields), members: new Set(members) };
}

function request(fields: Partial<SendRequest> = {}): SendRequest {
  return { caller: ann, talkId, text: "hi", medias: [], parentId: null, clientMessageId: null, ...fields };
}

const firstMessage = { id: "40000000-0000-4000-8000-000000000009", text: "first" } as unknown as Message;
const none: SendFacts = { parentTalk: undefined, first: null };

/** A verdict as [decision, error class, error text] for compact comparison. */
function summary(verdict: SendVerdict): unknown[] {
  switch (verdict.decision) {
    case "refuse":
      return ["refuse", verdict.error.kind, verdict.error.message];
    case "first":
      return ["first", verdict.message];
    case "write":
      return ["write", verdict.talk.id];
    default:
      return [verdict.decision];
  }
}

describe("judgeSend", () => {
  it("writes a plain send to an active talk the sender takes part in, into that talk", () => {
    const talk = known();
    const verdict = judgeSend(talk, request(), true, none);
    expect(verdict).toEqual({ decision: "write", talk: talk.talk });
    expect(judgeSend(talk, request(), false, none)).toEqual(verdict);
  });

  it("refuses as NOT_FOUND a talk that is absent, another customer's, or lacks the sender", () => {
    const notFound = ["refuse", "not_found", `talk ${talkId} not found`];
    expect(summary(judgeSend(undefined, request(), true, none))).toEqual(notFound);
    expect(summary(judgeSend(known({ customerId: otherCustomer }), request(), true, none))).toEqual(notFound);
    expect(summary(judgeSend(known({}, [bob.agentId]), request(), true, none))).toEqual(notFound);
    // Before anything else: a retry into a talk the sender left learns nothing of it.
    expect(summary(judgeSend(known({}, []), request({ clientMessageId: "k" }), true, { parentTalk: talkId, first: firstMessage }))).toEqual(
      notFound,
    );
  });

  it("answers a retry with its first message, even in a closed talk or with a parent elsewhere", () => {
    const retry = request({ clientMessageId: "k", parentId });
    expect(summary(judgeSend(known(), retry, true, { parentTalk: otherTalk, first: firstMessage }))).toEqual(["first", firstMessage]);
    expect(summary(judgeSend(known({ status: "closed" }), retry, true, { parentTalk: talkId, first: firstMessage }))).toEqual([
      "first",
      firstMessage,
    ]);
  });

  it("refuses a closed talk only on a fresh read; a remembered one is read again", () => {
    const closed = known({ status: "closed" });
    expect(summary(judgeSend(closed, request(), true, none))).toEqual([
      "refuse",
      "failed_precondition",
      "the talk is closed; reopen it first",
    ]);
    expect(summary(judgeSend(closed, request(), false, none))).toEqual(["read again"]);
    expect(summary(judgeSend(closed, request({ clientMessageId: "k" }), false, { parentTalk: undefined, first: undefined }))).toEqual([
      "read again",
    ]);
  });

  it("leaves a retry into a closed talk to the locking path when its first message is not known", () => {
    const closed = known({ status: "closed" });
    const retry = request({ clientMessageId: "k" });
    expect(summary(judgeSend(closed, retry, true, { parentTalk: undefined, first: undefined }))).toEqual(["lock"]);
    // Known to have none: refused here.
    expect(summary(judgeSend(closed, retry, true, none))).toEqual(["refuse", "failed_precondition", "the talk is closed; reopen it first"]);
  });

  it("refuses a parent that is not a message of the same talk, after the talk's status", () => {
    const reply = request({ parentId });
    const invalid = ["refuse", "invalid_argument", "parent_id: must name a message of the same talk"];
    expect(summary(judgeSend(known(), reply, true, { parentTalk: otherTalk, first: null }))).toEqual(invalid);
    expect(summary(judgeSend(known(), reply, true, { parentTalk: undefined, first: null }))).toEqual(invalid);
    expect(summary(judgeSend(known(), reply, true, { parentTalk: talkId, first: null }))).toEqual(["write", talkId]);
    expect(summary(judgeSend(known({ status: "closed" }), reply, true, { parentTalk: otherTalk, first: null }))[1]).toBe(
      "failed_precondition",
    );
  });

  it("writes a send with a client_message_id whose first message is not known (the unique index decides)", () => {
    expect(summary(judgeSend(known(), request({ clientMessageId: "k" }), false, { parentTalk: undefined, first: undefined }))).toEqual([
      "write",
      talkId,
    ]);
  });
});
