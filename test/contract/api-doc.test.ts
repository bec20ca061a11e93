/**
 * docs/api.md and the protos cannot drift: its reference section is what the protos' RPCs,
 * REST bindings, fields and comments say today (npm run generate writes it), and every RPC
 * and field of the contract is named there.
 */
import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { referenceBegin, referenceEnd, renderReference } from "../../src/contract/api-reference.js";
import { loadContractServices } from "../../src/contract/contract-files.js";

const doc = await readFile("docs/api.md", "utf8");
const services = loadContractServices();

function section(text: string): string {
  const begin = text.indexOf(referenceBegin);
  const end = text.indexOf(referenceEnd);
  expect(begin, "docs/api.md has the reference markers").toBeGreaterThanOrEqual(0);
  expect(end).toBeGreaterThan(begin);
  return text.slice(begin, end + referenceEnd.length);
}

describe("docs/api.md reference", () => {
  it("is what the protos say today: run npm run generate when this fails", () => {
    expect(section(doc)).toBe(renderReference(services));
  });

  it("names every RPC, with each field of its request and response", () => {
    const reference = section(doc);
    for (const service of services) {
      for (const method of service.methods) {
        expect(reference).toContain(`#### ${service.name}.${method.name}\n`);
        for (const field of [...method.input.fields, ...method.output.fields]) {
          expect(reference, `${method.name}: ${field.name}`).toContain(`| \`${field.name}\` |`);
        }
      }
    }
  });

  it("keeps the hand-written rules outside the generated part", () => {
    const outside = doc.replace(section(doc), "");
    expect(outside).toContain("## Talks");
    expect(outside).toContain("## Access and errors");
  });
});
