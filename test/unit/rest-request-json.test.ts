import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { restBindings } from "../../src/http/rest/bindings.js";
import { requestJson } from "../../src/http/rest/request-json.js";
import { testService } from "./rest-schema.js";

const [noBody, wholeBody, innerBody] = restBindings([
  testService([
    { name: "Get", rule: { pattern: { case: "get", value: "/v1/x/{id}" } } },
    { name: "Post", rule: { pattern: { case: "post", value: "/v1/x/{id}" }, body: "*" } },
    { name: "Put", rule: { pattern: { case: "put", value: "/v1/x/{id}" }, body: "inner" } },
  ]),
]) as [never, never, never];

const run = (binding: typeof noBody, body: string, query = "", path: Record<string, string> = {}) =>
  requestJson(binding, body, new URLSearchParams(query), new Map(Object.entries(path)));
/** Plain copies, since the built objects have no prototype. */
const plain = (value: unknown): unknown => JSON.parse(JSON.stringify(value));

function refusal(act: () => unknown): string {
  try {
    act();
  } catch (error) {
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.InvalidArgument);
    return (error as ConnectError).rawMessage;
  }
  throw new Error("not refused");
}

describe("requestJson: the body", () => {
  it('copies a "*" body\'s keys into a prototype-less object', () => {
    const json = run(wholeBody, '{"id":"a","count":3,"inner":{"name":"n"}}');
    expect(plain(json)).toEqual({ id: "a", count: 3, inner: { name: "n" } });
    expect(Object.getPrototypeOf(json)).toBeNull();
  });

  it('refuses the keys of a "*" body that name no field, naming them all', () => {
    const refused = refusal(() => run(wholeBody, '{"id":"a","odd":null,"medias":[]}'));
    expect(refused).toMatch(/^unknown fields "odd", "medias" in the request body/);
  });

  it('refuses a "*" body that is not a JSON object', () => {
    for (const body of ["[]", '"s"', "null", "3", "[{}]"])
      expect(refusal(() => run(wholeBody, body))).toBe("the request body must be a JSON object");
  });

  it("refuses a body that is not JSON", () => {
    expect(refusal(() => run(wholeBody, "{nope"))).toBe("the request body is not JSON");
    expect(refusal(() => run(innerBody, "{"))).toBe("the request body is not JSON");
  });

  it("puts a field body under its field, whatever JSON it is", () => {
    expect(plain(run(innerBody, '{"name":"n"}'))).toEqual({ inner: { name: "n" } });
    expect(plain(run(innerBody, "[1]"))).toEqual({ inner: [1] });
  });

  it("ignores a blank body, and any body where the rule has none", () => {
    expect(plain(run(wholeBody, " \n\t "))).toEqual({});
    expect(plain(run(innerBody, ""))).toEqual({});
    expect(plain(run(noBody, "{not json"))).toEqual({});
  });

  it("refuses a reserved key anywhere in the body, naming where", () => {
    expect(refusal(() => run(wholeBody, '{"__proto__":{"x":1}}'))).toBe('the request body\'s key "__proto__" is not allowed');
    expect(refusal(() => run(wholeBody, '{"inner":{"deeper":{"constructor":1}}}'))).toBe(
      'the request body\'s key "inner.deeper.constructor" is not allowed',
    );
    expect(refusal(() => run(wholeBody, '{"medias":[1,{"a":2},{"prototype":3}]}'))).toBe(
      'the request body\'s key "medias[2].prototype" is not allowed',
    );
    expect(refusal(() => run(innerBody, '[[{"ok":1}],[{"__proto__":1}]]'))).toBe(
      'the request body\'s key "[1][0].__proto__" is not allowed',
    );
  });

  it("looks past scalars in arrays and objects", () => {
    expect(plain(run(innerBody, '{"a":[1,"constructor",null,true],"b":"prototype","c":null}'))).toEqual({
      inner: { a: [1, "constructor", null, true], b: "prototype", c: null },
    });
  });

  it("shortens a long reserved-key path in the message", () => {
    const long = "k".repeat(95);
    expect(refusal(() => run(wholeBody, `{"${long}":{"__proto__":1}}`))).toBe(
      `the request body's key "${`${long}.__pr`}..." is not allowed`,
    );
    const exact = "k".repeat(90);
    expect(refusal(() => run(wholeBody, `{"${exact}":{"__proto__":1}}`))).toBe(
      `the request body's key "${exact}.__proto__" is not allowed`,
    );
  });
});

describe("requestJson: the query", () => {
  it("sets scalar fields, the last value winning", () => {
    expect(plain(run(noBody, "", "id=a&id=b&count=5&chat_id=c"))).toEqual({ id: "b", count: "5", chat_id: "c" });
  });

  it("collects every value of a repeated field", () => {
    expect(plain(run(noBody, "", "tags=a&tags=b"))).toEqual({ tags: ["a", "b"] });
  });

  it("reads a bool as true only for true or 1", () => {
    expect(plain(run(noBody, "", "flag=true"))).toEqual({ flag: true });
    expect(plain(run(noBody, "", "flag=1"))).toEqual({ flag: true });
    expect(plain(run(noBody, "", "flag=yes"))).toEqual({ flag: false });
    expect(plain(run(noBody, "", "flag=false"))).toEqual({ flag: false });
    expect(plain(run(noBody, "", "flags=1&flags=0&flags=true"))).toEqual({ flags: [true, false, true] });
    expect(plain(run(noBody, "", "id=true"))).toEqual({ id: "true" });
  });

  it("reaches nested fields along dotted paths, by proto or JSON name", () => {
    const json = run(noBody, "", "inner.deeper.name=d&inner.name=n&chatId=c");
    expect(plain(json)).toEqual({ inner: { deeper: { name: "d" }, name: "n" }, chat_id: "c" });
    expect(Object.getPrototypeOf(json["inner"])).toBeNull();
  });

  it("adds to an object a field body made", () => {
    expect(plain(run(innerBody, '{"name":"n"}', "inner.deeper.name=d"))).toEqual({ inner: { name: "n", deeper: { name: "d" } } });
  });

  it("replaces a field body that is not an object when a query key goes through it", () => {
    expect(plain(run(innerBody, '"s"', "inner.name=n"))).toEqual({ inner: { name: "n" } });
  });

  it("ignores parameters that name no field, and the token", () => {
    expect(plain(run(noBody, "", "cachebust=1&nope.x=2&=3&token=t.t.t"))).toEqual({});
  });

  it('ignores the query for a "*" body', () => {
    expect(plain(run(wholeBody, '{"id":"b"}', "id=q&count=2"))).toEqual({ id: "b" });
  });

  it("refuses a dotted parameter that starts at a field and leaves the schema", () => {
    expect(refusal(() => run(noBody, "", "inner.nope=1"))).toBe('query parameter "inner.nope" does not name a field of Req');
    expect(refusal(() => run(noBody, "", "id.x=1"))).toBe('query parameter "id.x" does not name a field of Req');
  });

  it("refuses a reserved key in any part of a parameter name, for every binding", () => {
    for (const key of ["__proto__", "inner.constructor", "a[prototype]", "x.y.__proto__", "constructor[0]"]) {
      expect(refusal(() => run(noBody, "", `${encodeURIComponent(key)}=1`))).toBe(`query parameter ${JSON.stringify(key)} is not allowed`);
      expect(refusal(() => run(wholeBody, "{}", `${encodeURIComponent(key)}=1`))).toContain("is not allowed");
    }
  });

  it("shortens a long parameter name in the message", () => {
    const key = `${"q".repeat(120)}.__proto__`;
    expect(refusal(() => run(noBody, "", `${key}=1`))).toBe(`query parameter "${"q".repeat(100)}..." is not allowed`);
  });
});

describe("requestJson: path fields", () => {
  it("win over the body and the query", () => {
    expect(plain(run(wholeBody, '{"id":"body"}', "", { id: "path" }))).toEqual({ id: "path" });
    expect(plain(run(noBody, "", "id=query", { id: "path" }))).toEqual({ id: "path" });
  });

  it("reach nested fields, keeping what the query set next to them", () => {
    expect(plain(run(noBody, "", "inner.deeper.name=q", { "inner.name": "p" }))).toEqual({ inner: { deeper: { name: "q" }, name: "p" } });
  });

  it("are an internal error when the path names no field (the bindings check this at start)", () => {
    expect(() => run(noBody, "", "", { nope: "x" })).toThrow("path field nope is not a field of test.v1.Req");
  });
});
