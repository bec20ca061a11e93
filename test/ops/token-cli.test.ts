/** `npm run token`: --help prints the usage (no stack trace); an unknown option says which. */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);
const root = fileURLToPath(new URL("../..", import.meta.url));

async function token(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ["--import", "tsx", "src/cli/token.ts", ...args], {
      cwd: root,
      timeout: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? -1, stdout: failed.stdout ?? "", stderr: failed.stderr ?? "" };
  }
}

describe("npm run token", () => {
  it("--help prints the usage and exits 0", async () => {
    const help = await token(["--help"]);
    expect(help).toMatchObject({ code: 0, stderr: "" });
    expect(help.stdout).toMatch(/^usage: npm run token -- --customer <uuid> --agent <uuid>/);
  }, 90_000);

  it("an unknown option is named, with the usage and no stack trace", async () => {
    const bad = await token(["--bogus"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--bogus");
    expect(bad.stderr).toContain("usage:");
    expect(bad.stderr).not.toMatch(/\n\s+at /);
  }, 90_000);
});
