/**
 * A scratch copy of the repository for one breakage: every file git tracks or would track
 * (uncommitted edits included, ignored files left out), with node_modules linked to the
 * repository's. The tests find their root from their own path, so they run there unchanged.
 */
import { execFileSync } from "node:child_process";
import { copyFile, mkdir, mkdtemp, readFile, realpath, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { Edit } from "./breakage.js";

export async function makeScratch(repoRoot: string, name: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `talkhub-breakage-${name}-`));
  const listed = execFileSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], { cwd: repoRoot, encoding: "utf8" });
  const files = listed.split("\0").filter((f) => f !== "" && f !== "node_modules" && !f.startsWith("node_modules/"));
  const dirs = new Set(files.map((f) => dirname(join(dir, f))));
  for (const d of dirs) await mkdir(d, { recursive: true });
  for (const file of files) {
    // A file deleted in the working tree but still in the index is simply not copied.
    await copyFile(join(repoRoot, file), join(dir, file)).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== "ENOENT") throw error;
    });
  }
  await symlink(await realpath(join(repoRoot, "node_modules")), join(dir, "node_modules"), "dir");
  return dir;
}

export async function removeScratch(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/**
 * Applies the edits; throws naming the first that does not apply as written (its text is not
 * there, or not as often as it says), so code that moved fails loudly instead of passing.
 */
export async function applyEdits(dir: string, edits: readonly Edit[]): Promise<void> {
  for (const edit of edits) {
    const path = join(dir, edit.file);
    const text = await readFile(path, "utf8").catch(() => {
      throw new Error(`${edit.file} does not exist`);
    });
    const found = text.split(edit.find).length - 1;
    const expected = edit.count ?? 1;
    if (found !== expected) {
      throw new Error(`${edit.file}: expected ${expected} occurrence(s) of ${JSON.stringify(edit.find.slice(0, 120))}, found ${found}`);
    }
    const changed = text.split(edit.find).join(edit.replace);
    if (changed === text) throw new Error(`${edit.file}: the edit changes nothing`);
    await writeFile(path, changed);
  }
}
