/**
 * Which failures to reach Postgres are retried at start (the server down, starting or full),
 * and how the server is named in logs and messages (never with its user or password).
 */
import { describe, expect, it } from "vitest";
import { postgresServer, retryableConnectError } from "../../src/store/postgres-reachable.js";

const withCode = (code: string, message = code) => Object.assign(new Error(message), { code });

describe("retryableConnectError", () => {
  it("retries a server that is down, unreachable, starting or full", () => {
    for (const error of [
      withCode("ECONNREFUSED"),
      withCode("ENOTFOUND"),
      withCode("57P03", "the database system is starting up"),
      withCode("53300", "sorry, too many clients already"),
      new Error("timeout exceeded when trying to connect"),
      new Error("Connection terminated unexpectedly"),
      new AggregateError([withCode("ECONNREFUSED"), withCode("ECONNREFUSED")]),
    ]) {
      expect(retryableConnectError(error), error.message).toBe(true);
    }
  });

  it("does not retry a refusal that waiting will not change", () => {
    for (const error of [
      withCode("28P01", 'password authentication failed for user "talkhub"'),
      withCode("3D000", 'database "talkhub" does not exist'),
      new AggregateError([]),
      "not an error",
    ]) {
      expect(retryableConnectError(error), String(error)).toBe(false);
    }
  });
});

describe("postgresServer", () => {
  it("is host:port/database, without the user and password", () => {
    expect(postgresServer("postgres://talkhub:secret@db.internal/talkhub?sslmode=require")).toBe("db.internal:5432/talkhub");
    expect(postgresServer("postgresql://127.0.0.1:6543")).toBe("127.0.0.1:6543");
  });
});
