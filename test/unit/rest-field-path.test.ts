import { describe, expect, it } from "vitest";
import { fieldNamed, fieldPath, isReservedKey } from "../../src/http/rest/field-path.js";
import { testService } from "./rest-schema.js";

const req = testService([{ name: "M" }]).methods[0]!.input;
const names = (path: string) => fieldPath(req, path)?.map((f) => f.name);

describe("isReservedKey", () => {
  it.each(["__proto__", "constructor", "prototype"])("reserves %s", (key) => expect(isReservedKey(key)).toBe(true));
  it.each(["proto", "__proto", "Constructor", "id", ""])("does not reserve %j", (key) => expect(isReservedKey(key)).toBe(false));
});

describe("fieldNamed", () => {
  it("finds a field by its proto name or its JSON name", () => {
    expect(fieldNamed(req, "chat_id")?.number).toBe(9);
    expect(fieldNamed(req, "chatId")?.number).toBe(9);
    expect(fieldNamed(req, "chatid")).toBeUndefined();
    expect(fieldNamed(req, "constructor")).toBeUndefined();
  });
});

describe("fieldPath", () => {
  it("follows singular message fields to any last field", () => {
    expect(names("id")).toEqual(["id"]);
    expect(names("inner.name")).toEqual(["inner", "name"]);
    expect(names("inner.deeper.deeper.name")).toEqual(["inner", "deeper", "deeper", "name"]);
    expect(names("inner.items")).toEqual(["inner", "items"]);
    expect(names("chatId")).toEqual(["chat_id"]);
  });

  it("is undefined when a segment names no field", () => {
    expect(names("nope")).toBeUndefined();
    expect(names("inner.nope")).toBeUndefined();
    expect(names("")).toBeUndefined();
    expect(names("inner.")).toBeUndefined();
    expect(names("inner.__proto__")).toBeUndefined();
  });

  it("does not descend through a scalar or a repeated field", () => {
    expect(names("id.length")).toBeUndefined();
    expect(names("tags.name")).toBeUndefined();
    expect(names("inner.items.name")).toBeUndefined();
  });
});
