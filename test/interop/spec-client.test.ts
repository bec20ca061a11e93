/**
 * A client written from the spec's text alone (test/interop/clients/spec_client.py: Python's
 * standard library, urllib and a minimal WebSocket) walks the spec's tutorial and curl examples
 * against a Talkhub process and checks every field the spec shows in the spec's types and
 * formats: "2024-01-17 10:30:00.000000" timestamps, tm_delete "" while live, parent_id only on
 * replies, numbers for seqs, on REST answers and WebSocket pushes alike.
 */
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { killAllChildren, newAgent, newSecret, spawnTalkhub, type AgentIdentity, type TalkhubProcess } from "../support/processes.js";
import { runs, toolPresent } from "../support/external-tools.js";

const run = promisify(execFile);
const script = fileURLToPath(new URL("./clients/spec_client.py", import.meta.url));
const python = "/usr/bin/python3";
const havePython = toolPresent("spec-client (Python 3)", "python3", runs(python, ["--version"]), "apt-get install -y python3");

describe.runIf(havePython)("a client written from the spec", () => {
  const secret = newSecret();
  let talkhub: TalkhubProcess;

  beforeAll(async () => {
    talkhub = await spawnTalkhub({ TALKHUB_JWT_SECRET: secret, TALKHUB_LOG_LEVEL: "silent" }, 240_000);
  }, 300_000);
  afterAll(async () => {
    await talkhub?.stop();
    await killAllChildren();
  });

  it("walks the tutorial and the curl examples, every field in the spec's types and formats", async () => {
    const customer = randomUUID();
    const [a, b, c] = (await Promise.all(["Agent A", "Agent B", "Agent C"].map((name) => newAgent(secret, customer, name)))) as [
      AgentIdentity,
      AgentIdentity,
      AgentIdentity,
    ];
    // An agent enters the directory with its first call, as the spec's agents come from GET /agents.
    for (const agent of [a, b, c]) {
      const reply = await fetch(`${talkhub.url}/v1.0/agents?token=${agent.token}`);
      expect(reply.status).toBe(200);
    }
    const result = await run(python, [script, talkhub.url, customer, a.id, a.token, b.id, b.token, c.id], { timeout: 90_000 }).catch(
      (error: { stdout?: string; stderr?: string }) => ({ stdout: error.stdout ?? "", stderr: error.stderr ?? String(error) }),
    );
    expect(`${result.stdout}${result.stderr}`).toMatch(/^ok \d+\n$/);
  }, 120_000);

  it("Connect keeps proto3 JSON: RFC 3339 timestamps, no unset tm_delete, int64 as strings", async () => {
    const ann = await newAgent(secret, randomUUID(), "Ann");
    const reply = await fetch(`${talkhub.url}/talk.v1.TalkService/CreateTalk`, {
      method: "POST",
      headers: { authorization: `Bearer ${ann.token}`, "content-type": "application/json" },
      body: JSON.stringify({ type: "group" }),
    });
    expect(reply.status).toBe(200);
    const { talk } = (await reply.json()) as { talk: Record<string, unknown> };
    expect(talk["tm_create"]).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$/);
    expect(talk).not.toHaveProperty("tm_delete");
    expect(typeof talk["last_seq"]).toBe("string");
  }, 60_000);
});
