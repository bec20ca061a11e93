/**
 * The README's tour runs as written (against a service on a free port, with its data dir).
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startService, type Service } from "../../src/service.js";

const run = promisify(execFile);

function tourScript(readme: string): string {
  const tour = readme.slice(readme.indexOf("## A five-minute tour"));
  const block = /```sh\n([\s\S]*?)```/.exec(tour);
  if (block?.[1] === undefined) throw new Error("the README has no tour block");
  return block[1];
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
    const script = tourScript(await readFile("README.md", "utf8")).replaceAll("localhost:8080", `127.0.0.1:${service.port}`);
    const { stdout } = await run("bash", ["-euo", "pipefail", "-c", script], {
      env: { ...process.env, TALKHUB_DATA_DIR: dataDir, TALKHUB_JWT_SECRET: "" },
      timeout: 60_000,
    });
    const lines = stdout.trim().split("\n");
    const list = JSON.parse(lines.at(-1) ?? "{}") as {
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
  }, 90_000);
});
