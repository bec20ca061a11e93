/**
 * `npx tsx bench/rerender.ts bench/results/<name>.json`: writes the markdown and SVG of a run
 * again from its JSON (after a change to the report's format; the figures are not touched).
 */
import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { writeReport } from "./report.js";
import type { Results } from "./run.js";

const file = process.argv[2];
if (file === undefined) throw new Error("usage: tsx bench/rerender.ts bench/results/<name>.json");
const results = JSON.parse(await readFile(file, "utf8")) as Results;
const written = await writeReport(dirname(resolve(file)), results, true);
console.log(`rewrote ${written.filter((f) => !f.endsWith(".json")).join(", ")}`);
