import { describe, expect, it } from "vitest";
import { bearerOf } from "../../src/auth/bearer.js";
import { bearerToken } from "../../src/http/bearer-token.js";

describe("bearerOf", () => {
  it.each([
    ["Bearer abc.def", "abc.def"],
    ["bearer abc", "abc"],
    ["BEARER abc", "abc"],
    ["Bearer   abc", "abc"],
    ["Bearer\tabc", "abc"],
    ["Bearer abc  ", "abc"],
  ])("reads %j", (header, token) => expect(bearerOf(header)).toBe(token));

  it.each(["Bearer", "Bearer ", "Bearerabc", "Basic abc", "xBearer abc", " Bearer abc", "Bearer a b", "Bearer abc x", ""])(
    "refuses %j",
    (header) => expect(bearerOf(header)).toBeUndefined(),
  );
});

describe("bearerToken", () => {
  it("takes the Authorization header when there is one, even with a query token", () => {
    expect(bearerToken("Bearer h.h.h", "/x?token=q.q.q")).toEqual({ from: "header", token: "h.h.h" });
  });

  it("does not fall back to the query when the header is malformed", () => {
    expect(bearerToken("Basic xyz", "/x?token=q.q.q")).toEqual({ from: "header", token: undefined });
    expect(bearerToken("", "/x?token=q.q.q")).toEqual({ from: "header", token: undefined });
    expect(bearerToken(["Bearer a", "Bearer b"], "/x?token=q.q.q")).toEqual({ from: "header", token: undefined });
    expect(bearerToken(["Bearer a"], "/x?token=q.q.q")).toEqual({ from: "header", token: undefined });
  });

  it("takes ?token= without a header", () => {
    expect(bearerToken(undefined, "/x?token=aZ09_-.b")).toEqual({ from: "query", token: "aZ09_-.b" });
    expect(bearerToken(undefined, "/x?a=1&token=t&b=2")).toEqual({ from: "query", token: "t" });
    expect(bearerToken(undefined, "?token=t")).toEqual({ from: "query", token: "t" });
  });

  it("refuses a query token that cannot be a JWT", () => {
    for (const bad of ["a%20b", "a+b", "a%2Fb", "a%00", "a~b"])
      expect(bearerToken(undefined, `/x?token=${bad}`)).toEqual({ from: "query", token: undefined });
  });

  it("finds no token without a query, an empty one, or another parameter", () => {
    expect(bearerToken(undefined, undefined)).toEqual({ from: "none" });
    expect(bearerToken(undefined, "/x")).toEqual({ from: "none" });
    expect(bearerToken(undefined, "/token=abc")).toEqual({ from: "none" });
    expect(bearerToken(undefined, "/x?token=")).toEqual({ from: "none" });
    expect(bearerToken(undefined, "/x?mytoken=abc")).toEqual({ from: "none" });
    expect(bearerToken(undefined, "/x?tok=abc&b=token")).toEqual({ from: "none" });
  });

  it("reads the query after the first ?", () => {
    expect(bearerToken(undefined, "/x/token=a?token=b")).toEqual({ from: "query", token: "b" });
  });
});
