import { describe, expect, it } from "vitest";
import { matchPathTemplate, parsePathTemplate } from "../../src/http/rest/path-template.js";

const match = (template: string, path: string) => {
  const fields = matchPathTemplate(parsePathTemplate(template), path);
  return fields === null ? null : Object.fromEntries(fields);
};

describe("parsePathTemplate", () => {
  it("reads literals, one-segment fields and rest-of-path fields", () => {
    const template = parsePathTemplate("/v1.0/talks/{chat_id}/x/{a.b=*}/{rest=**}");
    expect(template.source).toBe("/v1.0/talks/{chat_id}/x/{a.b=*}/{rest=**}");
    expect(template.segments).toEqual([
      { kind: "literal", value: "v1.0" },
      { kind: "literal", value: "talks" },
      { kind: "field", path: "chat_id", rest: false },
      { kind: "literal", value: "x" },
      { kind: "field", path: "a.b", rest: false },
      { kind: "field", path: "rest", rest: true },
    ]);
  });

  it("accepts field names in any case", () => {
    expect(parsePathTemplate("/{Id}").segments).toEqual([{ kind: "field", path: "Id", rest: false }]);
  });

  it.each([
    ["v1/talks", "must start with"],
    ["/v1/{id", "unsupported"],
    ["/v1/id}", "unsupported"],
    ["/v1/x{id}", "unsupported"],
    ["/v1/{id}x", "unsupported"],
    ["/v1/{1d}", "unsupported"],
    ["/v1/{id=***}", "unsupported"],
    ["/v1/{id=x}", "unsupported"],
    ["/v1//talks", "unsupported"],
    ["/v1/", "unsupported"],
  ])("refuses %s", (source, problem) => {
    expect(() => parsePathTemplate(source)).toThrow(problem);
  });
});

describe("matchPathTemplate", () => {
  it("captures fields, URL-decoded", () => {
    expect(match("/v1/talks/{chat_id}/messages", "/v1/talks/a%20b%2Fc/messages")).toEqual({ chat_id: "a b/c" });
  });

  it("needs every literal to match", () => {
    expect(match("/v1/talks/{id}", "/v1/talk/x")).toBeNull();
    expect(match("/v1/talks/{id}", "/v2/talks/x")).toBeNull();
  });

  it("needs exactly as many segments as the template", () => {
    expect(match("/v1/talks/{id}", "/v1/talks")).toBeNull();
    expect(match("/v1/talks/{id}", "/v1/talks/x/y")).toBeNull();
    expect(match("/v1/talks", "/v1/talks/")).toBeNull();
    expect(match("/v1/talks", "/v1/talks")).toEqual({});
  });

  it("refuses an empty segment where a field or literal stands", () => {
    expect(match("/v1/talks/{id}", "/v1/talks/")).toBeNull();
    expect(match("/v1/{x}/talks", "/v1//talks")).toBeNull();
  });

  it("ignores leading slashes, also without any", () => {
    expect(match("/v1/talks/{id}", "//v1/talks/x")).toEqual({ id: "x" });
    expect(match("/v1/talks/{id}", "v1/talks/x")).toEqual({ id: "x" });
  });

  it("refuses a segment that is not valid percent-encoding", () => {
    expect(match("/v1/talks/{id}", "/v1/talks/%E0%A4%A")).toBeNull();
    expect(match("/v1/{rest=**}", "/v1/a/%E0%A4%A")).toBeNull();
  });

  it("gives a rest-of-path field every remaining segment, decoded and joined", () => {
    expect(match("/v1/{rest=**}", "/v1/a/b%20c/d")).toEqual({ rest: "a/b c/d" });
    expect(match("/v1/{rest=**}", "/v1/a")).toEqual({ rest: "a" });
  });

  it("refuses a rest-of-path field with nothing left", () => {
    expect(match("/v1/{rest=**}", "/v1")).toBeNull();
  });

  it("does not treat {x=*} as the rest of the path", () => {
    expect(match("/v1/{x=*}", "/v1/a/b")).toBeNull();
    expect(match("/v1/{x=*}", "/v1/a")).toEqual({ x: "a" });
  });
});
