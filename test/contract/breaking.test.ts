/**
 * scripts/breaking.sh, the `buf breaking` step of `npm test`, in a fresh `git clone` of this
 * repository, its HEAD detached and its local main removed (so main is only origin/main, as in
 * a clone made from a branch): it passes on the contract as committed and fails, naming the
 * field, once a field of the contract is deleted.
 */
import { execFile } from "node:child_process";
import { copyFile, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const root = resolve(".");
const env = { ...process.env, PATH: `${join(root, "node_modules", ".bin")}:${process.env["PATH"] ?? ""}` };

async function breaking(clone: string): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await run("bash", ["scripts/breaking.sh"], { cwd: clone, env, timeout: 60_000 });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? -1, output: `${failed.stdout ?? ""}${failed.stderr ?? ""}` };
  }
}

describe("buf breaking in npm test", () => {
  let scratch: string;
  let clone: string;

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), "talkhub-breaking-test-"));
    clone = join(scratch, "clone");
    await run("git", ["clone", "--quiet", root, clone], { timeout: 60_000 });
    // Cloned from main (as CI clones), main would be the checked-out branch; leave only origin/main.
    await run("git", ["-C", clone, "checkout", "--quiet", "--detach"], { timeout: 30_000 });
    await run("git", ["-C", clone, "branch", "--quiet", "-D", "main"], { timeout: 30_000 }).catch(() => undefined);
    // The script under test is the working tree's (it may not be committed yet).
    await copyFile(join(root, "scripts", "breaking.sh"), join(clone, "scripts", "breaking.sh"));
  }, 90_000);

  afterAll(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  it("passes on the committed contract, against main and the contract before its latest change", async () => {
    const { code, output } = await breaking(clone);
    expect(output).toContain("buf breaking against main");
    expect(output).toContain("buf breaking against previous");
    expect(code, output).toBe(0);
  }, 60_000);

  it("compares a branch behind main's proto/ with the point it left main at, not with main's additions", async () => {
    // In the scratch clone, without touching its working tree: a local main, one commit past
    // origin/main, that adds a field the branch does not have.
    const git = async (args: string[], env: Record<string, string> = {}, input?: string): Promise<string> => {
      const child = run("git", ["-C", clone, ...args], { timeout: 30_000, env: { ...process.env, ...env } });
      if (input !== undefined) child.child.stdin?.end(input);
      return (await child).stdout.trim();
    };
    const path = "proto/talk/v1/resources.proto";
    const text = await git(["show", `origin/main:${path}`]);
    const added = `${text.replace("  google.protobuf.Timestamp tm_activity = 12;\n", "  google.protobuf.Timestamp tm_activity = 12;\n  string topic = 13;\n")}\n`;
    expect(added).toContain("topic = 13");
    const blob = await git(["hash-object", "-w", "--stdin"], {}, added);
    const index = { GIT_INDEX_FILE: join(scratch, "main-index") };
    await git(["read-tree", "origin/main"], index);
    await git(["update-index", "--cacheinfo", `100644,${blob},${path}`], index);
    const tree = await git(["write-tree"], index);
    const author = {
      GIT_AUTHOR_NAME: "t",
      GIT_AUTHOR_EMAIL: "t@example.com",
      GIT_COMMITTER_NAME: "t",
      GIT_COMMITTER_EMAIL: "t@example.com",
    };
    const commit = await git(["commit-tree", tree, "-p", "origin/main", "-m", "main adds Talk.topic"], author);
    await git(["branch", "main", commit]);
    const { code, output } = await breaking(clone);
    expect(output).toContain("main's proto/ changed since this branch left it");
    expect(code, output).toBe(0);
  }, 60_000);

  it("fails when a field of a message is deleted", async () => {
    const file = join(clone, "proto", "talk", "v1", "resources.proto");
    const text = await readFile(file, "utf8");
    const edited = text.replace("  // The exact number of current participants.\n  int32 member_count = 7;\n", "");
    expect(edited).not.toBe(text);
    await writeFile(file, edited);
    try {
      const { code, output } = await breaking(clone);
      expect(code, output).not.toBe(0);
      expect(output).toMatch(/Previously present field "7" with name "member_count" on message "Talk" was deleted/);
    } finally {
      await writeFile(file, text);
    }
  }, 60_000);
});
