import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import {
  AlreadyExists,
  Canceled,
  FailedPrecondition,
  InvalidArgument,
  NotFound,
  OutOfRange,
  PermissionDenied,
  ResourceExhausted,
  Unauthenticated,
  Unavailable,
} from "../../src/domain/model/errors.js";
import { codeName, endOfCall, isCancellation, recognized, toConnectError } from "../../src/rpc/errors.js";

/** Each domain error with the gRPC code the service answers it with. */
const mapped = [
  [new InvalidArgument("chat_id", "must be a UUID"), Code.InvalidArgument, "chat_id: must be a UUID"],
  [new NotFound("talk", "t1"), Code.NotFound, "talk t1 not found"],
  [new AlreadyExists("agent exists"), Code.AlreadyExists, "agent exists"],
  [new FailedPrecondition("talk is closed"), Code.FailedPrecondition, "talk is closed"],
  [new PermissionDenied("not a participant"), Code.PermissionDenied, "not a participant"],
  [new Unauthenticated("token expired"), Code.Unauthenticated, "token expired"],
  [new ResourceExhausted("too many streams"), Code.ResourceExhausted, "too many streams"],
  [new OutOfRange("after_seq is past the head"), Code.OutOfRange, "after_seq is past the head"],
  [new Canceled("the stream ended"), Code.Canceled, "the stream ended"],
  [new Unavailable("the database is unavailable"), Code.Unavailable, "the database is unavailable"],
] as const;

describe("rpc errors: one mapping from what a handler threw to its gRPC code", () => {
  it.each(mapped)("%s keeps its message under its own code", (error, code, message) => {
    const answer = toConnectError(error);
    expect(answer.code).toBe(code);
    expect(answer.rawMessage).toBe(message);
    expect(answer.cause).toBe(error);
    expect(answer.metadata.get("retry-after")).toBeNull();
  });

  it("gives a refusal with a wait a retry-after in whole seconds, rounded up", () => {
    expect(toConnectError(new ResourceExhausted("slow down", 1_001)).metadata.get("retry-after")).toBe("2");
    expect(toConnectError(new ResourceExhausted("slow down", 3_000)).metadata.get("retry-after")).toBe("3");
    expect(toConnectError(new ResourceExhausted("slow down", 1)).metadata.get("retry-after")).toBe("1");
  });

  it("passes a ConnectError through as it is", () => {
    const error = new ConnectError("deadline passed", Code.DeadlineExceeded);
    expect(toConnectError(error)).toBe(error);
    expect(recognized(error)).toBe(error);
  });

  it("answers an aborted operation CANCELED and anything unknown INTERNAL with a generic message", () => {
    const abort = new DOMException("aborted", "AbortError");
    expect(isCancellation(abort)).toBe(true);
    expect(isCancellation(new Error("AbortError"))).toBe(false);
    expect(isCancellation({ name: "AbortError" })).toBe(false);
    const cancelled = toConnectError(abort);
    expect([cancelled.code, cancelled.rawMessage]).toEqual([Code.Canceled, "the call was cancelled"]);

    const bug = new TypeError("x is undefined");
    const internal = toConnectError(bug);
    expect([internal.code, internal.rawMessage, internal.cause]).toEqual([Code.Internal, "internal error", bug]);
    expect(recognized(bug)).toBe(bug);
  });

  it("recognizes a domain error as itself and a refused database connection as UNAVAILABLE", () => {
    const notFound = new NotFound("talk");
    expect(recognized(notFound)).toBe(notFound);
    const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:5432"), { code: "ECONNREFUSED" });
    const answer = toConnectError(refused);
    expect([answer.code, answer.rawMessage]).toEqual([Code.Unavailable, "the database is unavailable"]);
  });

  it("ends an aborted call DEADLINE_EXCEEDED when its deadline passed, CANCELED otherwise, and not at all while it is on", () => {
    expect(endOfCall(new AbortController().signal)).toBeUndefined();

    const deadline = new ConnectError("the deadline passed", Code.DeadlineExceeded);
    expect(endOfCall(AbortSignal.abort(deadline))).toBe(deadline);

    for (const reason of [new ConnectError("reset", Code.Internal), new Error("socket hang up"), "gone"]) {
      const end = endOfCall(AbortSignal.abort(reason));
      expect([end?.code, end?.rawMessage, end?.cause]).toEqual([Code.Canceled, "the client cancelled the call", reason]);
    }
  });

  it("names codes as the Connect protocol writes them", () => {
    expect(codeName(Code.InvalidArgument)).toBe("invalid_argument");
    expect(codeName(Code.DeadlineExceeded)).toBe("deadline_exceeded");
    expect(codeName(Code.Unavailable)).toBe("unavailable");
  });
});
