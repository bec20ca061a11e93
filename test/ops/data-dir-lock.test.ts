/**
 * One process per embedded data dir: a second Talkhub on the same dir (by any path) refuses to
 * start, naming the dir and the holder's pid, and the first keeps serving with its data. The
 * lock dies with its holder: after a SIGKILL or a graceful stop, the next process starts.
 */
import { existsSync, linkSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { mintToken } from "../../src/auth/tokens.js";
import { DataDirInUse, lockDataDir } from "../../src/data-dir-lock.js";
import { startService } from "../../src/service.js";
import { createTestDatabase } from "../support/database.js";
import { dependenciesReachable } from "../support/reachability.js";
import { clientsFor, killAllChildren, newSecret, spawnTalkhub, type TalkhubProcess } from "../support/processes.js";

const scratch = mkdtempSync(join(tmpdir(), "talkhub-lock-"));
afterAll(async () => {
  await killAllChildren();
  rmSync(scratch, { recursive: true, force: true });
});

/** A Talkhub process on the embedded database in `dataDir`. */
const startOn = (dataDir: string): Promise<TalkhubProcess> => spawnTalkhub({ TALKHUB_DATA_DIR: dataDir }, 300_000);

/** Why a start on `dataDir` failed (the spawn helper's message: exit code and output). */
async function refusalOn(dataDir: string): Promise<string> {
  const started = await startOn(dataDir).then(
    async (unexpected) => {
      await unexpected.stop();
      return undefined;
    },
    (error: unknown) => String(error),
  );
  if (started === undefined) throw new Error(`a second process started on ${dataDir}`);
  return started;
}

/** Alice of the demo people (made by the first start in the dir), with her clients. */
async function alice(process: TalkhubProcess, dataDir: string) {
  const secret = readFileSync(join(dataDir, "jwt-secret"), "utf8").trim();
  const people = JSON.parse(readFileSync(join(dataDir, "demo.json"), "utf8")) as {
    customerId: string;
    agents: { id: string; name: string }[];
  };
  const [me, bob] = people.agents;
  if (me === undefined || bob === undefined) throw new Error("demo.json without Alice and Bob");
  const token = await mintToken(secret, { customerId: people.customerId, agentId: me.id, name: me.name });
  return { clients: clientsFor(process.url, token), bobId: bob.id };
}

async function messageTexts(process: TalkhubProcess, dataDir: string, chatId: string): Promise<string[]> {
  const { clients } = await alice(process, dataDir);
  try {
    const listed = await clients.messages.listMessages({ chatId, pageSize: 200 });
    return listed.result.map((message) => message.text);
  } finally {
    clients.close();
  }
}

async function readyz(process: TalkhubProcess): Promise<number> {
  return (await fetch(`${process.url}/readyz`, { signal: AbortSignal.timeout(10_000) })).status;
}

describe("the embedded data dir lock", () => {
  const dataDir = join(scratch, "shared");
  let chatId = "";

  it("refuses a second process on the same dir (naming the dir and the holder's pid); the first keeps serving its data", async () => {
    const first = await startOn(dataDir);
    try {
      const { clients, bobId } = await alice(first, dataDir);
      try {
        const talk = await clients.talks.createTalk({ participantIds: [bobId] });
        chatId = talk.talk?.id ?? "";
        await clients.messages.sendMessage({ chatId, text: "before the second start" });
      } finally {
        clients.close();
      }

      const refusal = await refusalOn(dataDir);
      expect(refusal).toMatch(/exited \(code [1-9]\d*, signal null\)/);
      // One line for the operator, no stack trace.
      expect(refusal).toContain("Talkhub not started: the data dir ");
      expect(refusal).not.toMatch(/\n\s+at /);
      expect(refusal).toContain(realpathSync(dataDir));
      expect(refusal).toContain(`pid ${first.pid}`);
      expect(refusal).not.toMatch(/Talkhub listening/);

      expect(first.alive()).toBe(true);
      expect(await readyz(first)).toBe(200);
      expect(await messageTexts(first, dataDir, chatId)).toContain("before the second start");
    } finally {
      await first.kill();
    }
  }, 300_000);

  it("refuses a second process that names the dir through a symlink", async () => {
    const first = await startOn(dataDir);
    try {
      const link = join(scratch, "link-to-shared");
      symlinkSync(dataDir, link);
      const refusal = await refusalOn(link);
      expect(refusal).toMatch(/exited \(code [1-9]\d*, signal null\)/);
      expect(refusal).toContain(realpathSync(dataDir));
      expect(refusal).toContain(`pid ${first.pid}`);
      expect(await readyz(first)).toBe(200);
    } finally {
      // SIGKILL: no graceful release, the next test starts on what a crash leaves behind.
      await first.kill();
    }
  }, 300_000);

  /** Starts a process on the dir, checks it serves the message written at first, stops it gracefully. */
  async function startsWithTheData(): Promise<void> {
    const next = await startOn(dataDir);
    try {
      expect(await readyz(next)).toBe(200);
      expect(await messageTexts(next, dataDir, chatId)).toContain("before the second start");
    } finally {
      await next.stop();
    }
  }

  it("starts after the holder was SIGKILLed (no stale lock), with the data written before", startsWithTheData, 300_000);

  it("starts after the holder stopped gracefully", startsWithTheData, 300_000);

  it("lets processes on different dirs run side by side", async () => {
    // The shared dir (made above) and a new one: one database to create instead of two.
    const dirs = [dataDir, join(scratch, "other")];
    const running = await Promise.all(dirs.map((dir) => startOn(dir)));
    try {
      expect(await Promise.all(running.map((process) => readyz(process)))).toEqual([200, 200]);
    } finally {
      await Promise.all(running.map((process) => process.stop()));
    }
  }, 300_000);
});

/** The error a call throws (failing the test when it does not throw). */
async function thrown(call: () => Promise<unknown>): Promise<unknown> {
  try {
    await call();
  } catch (error) {
    return error;
  }
  throw new Error("expected an error");
}

describe("the lock itself (in process)", () => {
  it.runIf(process.platform === "linux")("is an abstract socket on Linux: no file in the dir, and gone once released", async () => {
    const dir = join(scratch, "abstract");
    const lock = await lockDataDir(dir);
    const listed = () => readFileSync("/proc/net/unix", "utf8");
    try {
      expect(lock.address.startsWith("@talkhub-data-dir-")).toBe(true);
      expect(listed()).toContain(lock.address);
      expect(readdirSync(dir)).toEqual([]);
      const refused = await thrown(() => lockDataDir(dir));
      expect(refused).toBeInstanceOf(DataDirInUse);
      expect(refused).toMatchObject({ dataDir: realpathSync(dir), holderPid: process.pid });
    } finally {
      await lock.release();
    }
    expect(listed()).not.toContain(lock.address);
    await (await lockDataDir(dir)).release();
  });

  it("as a socket file (the other systems' way): refuses while held, removes one left by a crash", async () => {
    const dir = join(scratch, "socket-file");
    const lock = await lockDataDir(dir, "file");
    const refused = await thrown(() => lockDataDir(dir, "file"));
    expect(refused).toMatchObject({ dataDir: realpathSync(dir), holderPid: process.pid });
    await lock.release();
    expect(existsSync(join(dir, "lock.sock"))).toBe(false);

    // What a crash leaves: the socket file with nothing listening (a second name of a socket
    // that then closes; closing removes only the name it was bound to).
    const dead = createServer();
    await new Promise<void>((resolve) => dead.listen(join(dir, "dead.sock"), resolve));
    linkSync(join(dir, "dead.sock"), join(dir, "lock.sock"));
    await new Promise<void>((resolve) => dead.close(() => resolve()));
    expect(existsSync(join(dir, "lock.sock"))).toBe(true);
    const next = await lockDataDir(dir, "file");
    expect(await thrown(() => lockDataDir(dir, "file"))).toBeInstanceOf(DataDirInUse);
    await next.release();
  });
});

const postgres = await dependenciesReachable("data-dir-lock (Postgres)", { postgres: true });

describe.skipIf(!postgres)("a Postgres-configured service", () => {
  it("takes no data-dir lock: it starts while another process holds its TALKHUB_DATA_DIR", async () => {
    const dataDir = join(scratch, "postgres-process");
    const held = await lockDataDir(dataDir);
    const database = await createTestDatabase();
    try {
      const service = await startService({
        host: "127.0.0.1",
        port: 0,
        database: { kind: "postgres", url: database.url, poolSize: 2 },
        auth: { secret: newSecret(), jwksUrl: undefined, issuer: undefined, audience: undefined },
        natsUrl: undefined,
        dataDir,
      });
      await service.close();
      expect(readdirSync(dataDir)).toEqual([]);
    } finally {
      await held.release();
      await database.drop();
    }
  }, 60_000);
});
