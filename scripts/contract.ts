/**
 * `npm run generate` (after buf): the descriptions of the contract that client teams read,
 * written from gen/descriptors.binpb: gen/openapi.json (served at /v1.0/openapi.json) and the
 * reference section of docs/api.md. `--check` writes nothing and fails when either is stale.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { renderReference, withReference } from "../src/contract/api-reference.js";
import { loadContractServices } from "../src/contract/contract-files.js";
import { openApiDocument } from "../src/contract/openapi.js";

const root = new URL("..", import.meta.url);
const services = loadContractServices(new URL("gen/descriptors.binpb", root));
const outputs: [URL, string][] = [[new URL("gen/openapi.json", root), `${JSON.stringify(openApiDocument(services), null, 2)}\n`]];
const docPath = new URL("docs/api.md", root);
outputs.push([docPath, withReference(readFileSync(docPath, "utf8"), renderReference(services))]);

const read = (path: URL): string => {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
};
const stale = outputs.filter(([path, text]) => read(path) !== text);
if (process.argv.includes("--check")) {
  for (const [path] of stale) console.error(`${path.pathname} is stale: run npm run generate`);
  process.exitCode = stale.length > 0 ? 1 : 0;
} else {
  for (const [path, text] of stale) writeFileSync(path, text);
}
