/** Edge validation: raw values in, checked values out, or InvalidArgument naming the field. */
import { describe, expect, it } from "vitest";
import { InvalidArgument } from "../../src/domain/model/errors.js";
import { limits } from "../../src/domain/model/limits.js";
import * as validate from "../../src/domain/model/validate.js";

const uuid = "0190A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B";

function refusal(run: () => unknown): { field: string; message: string } {
  try {
    run();
  } catch (error) {
    if (error instanceof InvalidArgument) return { field: error.field, message: error.message };
    throw error;
  }
  throw new Error("not refused");
}

const media = { type: "application/pdf", url: "https://example.com/a.pdf", name: "a.pdf" };

describe("requireId / optionalId", () => {
  it("takes a UUID in any case and returns it lower-cased", () => {
    expect(validate.requireId("chat_id", uuid)).toBe(uuid.toLowerCase());
    expect(validate.optionalId("parent_id", uuid)).toBe(uuid.toLowerCase());
  });

  it("refuses a missing id, and reads an empty optional id as absent", () => {
    expect(refusal(() => validate.requireId("chat_id", ""))).toEqual({ field: "chat_id", message: "chat_id: is required" });
    expect(validate.optionalId("parent_id", "")).toBeNull();
  });

  it("refuses what is not a UUID, quoting at most 40 characters of it", () => {
    expect(refusal(() => validate.requireId("chat_id", "nope")).message).toBe('chat_id: must be a UUID, got "nope"');
    const long = "x".repeat(41);
    expect(refusal(() => validate.optionalId("parent_id", long)).message).toBe(`parent_id: must be a UUID, got "${"x".repeat(40)}..."`);
    const forty = "y".repeat(40);
    expect(refusal(() => validate.requireId("id", forty)).message).toBe(`id: must be a UUID, got "${forty}"`);
    expect(refusal(() => validate.requireId("id", ` ${uuid}`)).field).toBe("id");
  });
});

describe("oneOf", () => {
  it("takes one of the words and refuses others, listing them", () => {
    expect(validate.oneOf("type", "group", ["normal", "group"])).toBe("group");
    expect(refusal(() => validate.oneOf("type", "Group", ["normal", "group"])).message).toBe(
      'type: must be one of "normal", "group", got "Group"',
    );
  });
});

describe("text", () => {
  it("takes text up to the limit in code points", () => {
    expect(validate.text("text", "abc", 3)).toBe("abc");
    expect(validate.text("text", "", 0)).toBe("");
    // Four emoji are eight UTF-16 units but four characters.
    expect(validate.text("text", "😀😀😀😀", 4)).toBe("😀😀😀😀");
  });

  it("refuses text over the limit and text with NUL", () => {
    expect(refusal(() => validate.text("text", "abcd", 3))).toEqual({ field: "text", message: "text: must be at most 3 characters" });
    expect(refusal(() => validate.text("text", "😀😀😀😀😀", 4)).message).toBe("text: must be at most 4 characters");
    expect(refusal(() => validate.text("text", "a\u0000b", 10)).message).toBe("text: must not contain NUL characters");
  });
});

describe("medias", () => {
  it("takes valid attachments and returns only their three fields", () => {
    const extra = { ...media, extra: "dropped" };
    expect(validate.medias("medias", [extra, { ...media, url: "http://example.com/b" }])).toEqual([
      media,
      { ...media, url: "http://example.com/b" },
    ]);
    expect(validate.medias("medias", [])).toEqual([]);
  });

  it("takes as many as the limit and refuses one more", () => {
    const max = Array.from({ length: limits.maxMediasPerMessage }, () => media);
    expect(validate.medias("medias", max)).toHaveLength(limits.maxMediasPerMessage);
    expect(refusal(() => validate.medias("medias", [...max, media]))).toEqual({
      field: "medias",
      message: `medias: at most ${limits.maxMediasPerMessage} medias per message`,
    });
  });

  it.each([
    ["a type that is not a MIME type", { type: "pdf" }, "medias[1].type", 'must be a MIME type such as "application/pdf"'],
    ["an empty subtype", { type: "image/" }, "medias[1].type", 'must be a MIME type such as "application/pdf"'],
    ["text around the type", { type: "x image/png" }, "medias[1].type", 'must be a MIME type such as "application/pdf"'],
    ["text after the type", { type: "image/png x" }, "medias[1].type", 'must be a MIME type such as "application/pdf"'],
    ["an overlong type", { type: `a/${"b".repeat(254)}` }, "medias[1].type", 'must be a MIME type such as "application/pdf"'],
    ["an overlong URL", { url: `https://e.com/${"a".repeat(2048)}` }, "medias[1].url", "must be at most 2048 characters"],
    ["a URL with a control character", { url: "https://e.com/a\tb" }, "medias[1].url", "must not contain control characters"],
    ["a URL with DEL", { url: "https://e.com/a\u007fb" }, "medias[1].url", "must not contain control characters"],
    ["a relative URL", { url: "/a.pdf" }, "medias[1].url", "must be an absolute http or https URL"],
    ["a javascript URL", { url: "javascript:alert(1)" }, "medias[1].url", "must be an absolute http or https URL"],
    ["an ftp URL", { url: "ftp://e.com/a" }, "medias[1].url", "must be an absolute http or https URL"],
    ["an empty name", { name: "" }, "medias[1].name", "is required"],
    ["a blank name", { name: "  " }, "medias[1].name", "is required"],
    ["a name with a control character", { name: "a\nb" }, "medias[1].name", "must not contain control characters"],
    ["an overlong name", { name: "n".repeat(256) }, "medias[1].name", "must be at most 255 characters"],
  ])("refuses %s, naming the attachment's field", (_what, change, field, problem) => {
    expect(refusal(() => validate.medias("medias", [media, { ...media, ...change }]))).toEqual({ field, message: `${field}: ${problem}` });
  });

  it("takes the longest type, URL and name", () => {
    const longest = { type: `a/${"b".repeat(253)}`, url: `https://e.com/${"a".repeat(2048 - 14)}`, name: "n".repeat(255) };
    expect(longest.type).toHaveLength(255);
    expect(longest.url).toHaveLength(2048);
    expect(validate.medias("medias", [longest])).toEqual([longest]);
    expect(validate.medias("m", [{ ...media, type: "application/vnd.ms-excel+xml" }])).toHaveLength(1);
  });
});

describe("emoji", () => {
  it("takes a short name or the character", () => {
    expect(validate.emoji("emoji", "thumbsup")).toBe("thumbsup");
    expect(validate.emoji("emoji", "👍")).toBe("👍");
    expect(validate.emoji("emoji", "e".repeat(64))).toBe("e".repeat(64));
  });

  it.each([
    ["", "emoji: is required"],
    ["e".repeat(65), "emoji: must be at most 64 characters"],
    ["thumbs up", "emoji: must not contain whitespace or control characters"],
    ["x\u0007", "emoji: must not contain whitespace or control characters"],
  ])("refuses %j", (value, message) => {
    expect(refusal(() => validate.emoji("emoji", value))).toEqual({ field: "emoji", message });
  });
});

describe("pageSize", () => {
  it("reads 0 as the default, clamps to the maximum, and refuses negatives", () => {
    expect(validate.pageSize("page_size", 0)).toBe(limits.defaultPageSize);
    expect(validate.pageSize("page_size", 1)).toBe(1);
    expect(validate.pageSize("page_size", limits.maxPageSize)).toBe(limits.maxPageSize);
    expect(validate.pageSize("page_size", limits.maxPageSize + 1)).toBe(limits.maxPageSize);
    expect(refusal(() => validate.pageSize("page_size", -1))).toEqual({ field: "page_size", message: "page_size: must not be negative" });
  });
});
