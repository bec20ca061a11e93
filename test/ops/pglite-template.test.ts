/**
 * New embedded data dirs start as a copy of the build's initdb'd template (src/store/pglite-template.ts):
 * copied only into a missing or empty pgdata, never over a database, and the owner's only.
 */
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { startFromTemplate } from "../../src/store/pglite-template.js";

describe("the embedded database's template", () => {
  let dir: string;
  let template: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "talkhub-template-"));
    template = join(dir, "template");
    mkdirSync(join(template, "base", "1"), { recursive: true, mode: 0o755 });
    writeFileSync(join(template, "PG_VERSION"), "17\n");
    writeFileSync(join(template, "base", "1", "1259"), "catalog");
  });

  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("copies the template into a missing pgdata, the owner's only, and leaves no temporary copy", () => {
    const pgdata = join(dir, "data", "pgdata");
    mkdirSync(join(dir, "data"));
    expect(startFromTemplate(pgdata, template)).toBe(true);
    expect(readFileSync(join(pgdata, "base", "1", "1259"), "utf8")).toBe("catalog");
    expect(statSync(pgdata).mode & 0o777).toBe(0o700);
    expect(readdirSync(join(dir, "data"))).toEqual(["pgdata"]);
  });

  it("copies it into an empty pgdata", () => {
    const pgdata = join(dir, "pgdata");
    mkdirSync(pgdata);
    expect(startFromTemplate(pgdata, template)).toBe(true);
    expect(readFileSync(join(pgdata, "PG_VERSION"), "utf8")).toBe("17\n");
  });

  it("never touches a pgdata that holds anything", () => {
    const pgdata = join(dir, "pgdata");
    mkdirSync(pgdata);
    writeFileSync(join(pgdata, "PG_VERSION"), "16\n");
    expect(startFromTemplate(pgdata, template)).toBe(false);
    expect(readdirSync(pgdata)).toEqual(["PG_VERSION"]);
    expect(readFileSync(join(pgdata, "PG_VERSION"), "utf8")).toBe("16\n");
  });

  it("does nothing without a built template (PGlite runs initdb itself)", () => {
    const pgdata = join(dir, "pgdata");
    expect(startFromTemplate(pgdata, join(dir, "none"))).toBe(false);
    expect(() => statSync(pgdata)).toThrow();
  });
});
