/**
 * The README's tour runs as written (against a service on a free port, with its data dir):
 * every command block of the section, one after another in one shell (later blocks use the
 * tour's tokens and ids), Connect calls, the REST paths, `buf curl` over gRPC with reflection
 * and over Connect with the clone's protos, and the OpenAPI document.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startService, type Service } from "../../src/service.js";

const run = promisify(execFile);

/** The tour's command blocks, each followed by a line that marks its end in the output. */
function tourScript(readme: string): { script: string; blocks: number } {
  const start = readme.indexOf("## A five-minute tour");
  const end = readme.indexOf("\n## ", start + 1);
  const tour = readme.slice(start, end < 0 ? undefined : end);
  const blocks = [...tour.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1] ?? "");
  if (blocks.length === 0) throw new Error("the README has no tour block");
  return { script: blocks.map((block, i) => `${block}\necho; echo "${blockEnd}${i}"\n`).join(""), blocks: blocks.length };
}

const blockEnd = "@@ end of README block ";

/** Each block's output lines, empty lines left out. */
function outputs(stdout: string, blocks: number): string[][] {
  const parts = stdout.split(new RegExp(`^${blockEnd}\\d+$`, "m"));
  expect(parts.length, stdout).toBe(blocks + 1);
  return parts.slice(0, blocks).map((part) => part.split("\n").filter((line) => line.trim() !== ""));
}

describe("README tour", () => {
  let service: Service;
  let dataDir: string;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "talkhub-tour-"));
    service = await startService({
      host: "127.0.0.1",
      port: 0,
      database: { kind: "pglite", dataDir: null },
      auth: { secret: undefined, jwksUrl: undefined, issuer: undefined, audience: undefined },
      natsUrl: undefined,
      dataDir,
    });
  });

  afterAll(async () => {
    await service.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it("runs every command of the tour and ends with the thread and the reaction", async () => {
    const tour = tourScript(await readFile("README.md", "utf8"));
    expect(tour.blocks).toBe(3);
    const script = tour.script.replaceAll("localhost:8080", `127.0.0.1:${service.port}`);
    const { stdout } = await run("bash", ["-euo", "pipefail", "-c", script], {
      env: {
        ...process.env,
        TALKHUB_DATA_DIR: dataDir,
        TALKHUB_JWT_SECRET: "",
        PATH: `${join(process.cwd(), "node_modules", ".bin")}:${process.env["PATH"] ?? ""}`,
      },
      timeout: 120_000,
    });
    const [connect = [], rest = [], tools = []] = outputs(stdout, tour.blocks);
    const list = JSON.parse(connect.at(-1) ?? "{}") as {
      result: { text: string; type: string; parent_id: string; metadata: { reactions: { emoji: string }[] } }[];
    };
    expect(list.result.map((m) => m.text)).toEqual([
      "Found it: gateway timeout",
      "Customer reports a payment failure",
      "Bob joined the conversation.",
      "Alice joined the conversation.",
    ]);
    expect(list.result[0]?.parent_id).not.toBe("");
    expect(list.result[1]?.metadata.reactions.map((r) => r.emoji)).toEqual(["👍"]);

    // REST: the message sent, then the list that holds it.
    expect(rest.join("\n")).toContain('"text":"Hello team"');
    expect(rest.join("\n")).toMatch(/"result":\[\{[^\]]*"text":"Hello team"/);

    // buf curl prints pretty JSON: gRPC's page of two messages, then Connect's reaction.
    const text = tools.join("\n");
    const [page, reacted] = [...text.matchAll(/^\{$[\s\S]*?^\}$/gm)].map((m) => JSON.parse(m[0]) as Record<string, unknown>);
    expect(page, text).toBeDefined();
    expect(JSON.stringify(page)).toContain("Hello team");
    expect(page?.["result"]).toHaveLength(2);
    expect(JSON.stringify(reacted)).toContain("🎉");
    expect(JSON.stringify(reacted)).toContain("👍");
    expect(tools.at(-1)).toMatch(/^\d+ REST paths$/);
  }, 150_000);
});
