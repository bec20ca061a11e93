import { describe, expect, it } from "vitest";
import { restBindings } from "../../src/http/rest/bindings.js";
import { testService, type RuleInit } from "./rest-schema.js";

const get = (value: string): RuleInit["pattern"] => ({ case: "get", value });
const bindingsOf = (rule: RuleInit) => restBindings([testService([{ name: "M", rule }])]);

describe("restBindings", () => {
  it("turns each verb into its HTTP method", () => {
    const verbs = ["get", "post", "put", "patch", "delete"] as const;
    const service = testService(verbs.map((verb) => ({ name: `M${verb}`, rule: { pattern: { case: verb, value: `/v1/${verb}` } } })));
    expect(restBindings([service]).map((b) => [b.httpMethod, b.template.source, b.method.name])).toEqual([
      ["GET", "/v1/get", "Mget"],
      ["POST", "/v1/post", "Mpost"],
      ["PUT", "/v1/put", "Mput"],
      ["PATCH", "/v1/patch", "Mpatch"],
      ["DELETE", "/v1/delete", "Mdelete"],
    ]);
  });

  it("lists a rule's additional bindings after it, each with its own body, and skips methods without a rule", () => {
    const a = testService([
      {
        name: "A",
        rule: {
          pattern: get("/v1/a/{id}"),
          responseBody: "inner",
          additionalBindings: [{ pattern: { case: "post", value: "/v1/b" }, body: "*" }],
        },
      },
      { name: "NoRule" },
      { name: "C", rule: { pattern: { case: "patch", value: "/v1/c/{inner.name}" }, body: "inner" } },
    ]);
    expect(restBindings([a]).map((b) => [b.httpMethod, b.template.source, b.method.name, b.body, b.responseBody])).toEqual([
      ["GET", "/v1/a/{id}", "A", "", "inner"],
      ["POST", "/v1/b", "A", "*", ""],
      ["PATCH", "/v1/c/{inner.name}", "C", "inner", ""],
    ]);
  });

  it("keeps the services' order", () => {
    const one = testService([{ name: "One", rule: { pattern: get("/v1/one") } }]);
    const two = testService([{ name: "Two", rule: { pattern: get("/v1/two") } }]);
    expect(restBindings([two, one]).map((b) => b.method.name)).toEqual(["Two", "One"]);
    expect(restBindings([])).toEqual([]);
  });

  it("refuses a custom pattern and a rule without one", () => {
    expect(() => bindingsOf({ pattern: { case: "custom", value: { kind: "HEAD", path: "/v1/x" } } })).toThrow(
      /unsupported google.api.http pattern custom/,
    );
    expect(() => bindingsOf({ body: "*" })).toThrow(/unsupported google.api.http pattern undefined/);
  });

  it("refuses a path field that is not a field of the request, naming it", () => {
    expect(() => bindingsOf({ pattern: get("/v1/x/{nope}") })).toThrow("path field nope is not a field of test.v1.Req");
    expect(() => bindingsOf({ pattern: get("/v1/x/{inner.nope}") })).toThrow("path field inner.nope");
    expect(bindingsOf({ pattern: get("/v1/nope/{inner.deeper.name}") })).toHaveLength(1);
  });

  it("refuses an additional binding's bad path as well", () => {
    expect(() => bindingsOf({ pattern: get("/v1/x"), additionalBindings: [{ pattern: get("/v1/{nope}") }] })).toThrow("path field nope");
  });

  it("accepts no body, the whole request, or one top-level field as the body", () => {
    expect(bindingsOf({ pattern: get("/v1/x"), body: "" })[0]?.body).toBe("");
    expect(bindingsOf({ pattern: get("/v1/x"), body: "*" })[0]?.body).toBe("*");
    expect(bindingsOf({ pattern: get("/v1/x"), body: "tags" })[0]?.body).toBe("tags");
  });

  it("refuses a body that is not one field of the request", () => {
    expect(() => bindingsOf({ pattern: get("/v1/x"), body: "nope" })).toThrow("body nope is not a field of test.v1.Req");
    expect(() => bindingsOf({ pattern: get("/v1/x"), body: "inner.name" })).toThrow("body inner.name is not a field");
  });
});
