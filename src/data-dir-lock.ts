/**
 * One process per data dir. Two processes on one embedded database each keep their own copy of
 * it in memory and write over each other's files: what one acknowledges the other never sees,
 * and a restart loses it. So the first process takes an exclusive lock on the dir and a second
 * one refuses to start, naming the dir and the holder's pid.
 *
 * The lock is a listening Unix-domain socket, because the kernel frees a socket when its process
 * dies, however it dies (SIGKILL, OOM, power loss), and Node has no flock(2):
 *
 * - Linux: a socket in the abstract namespace named after the dir's device and inode, so every
 *   path to the dir (symlinks, bind mounts) finds the same lock. The name is bound atomically
 *   (EADDRINUSE for the second) and leaves no file behind, so there is no stale lock and no race
 *   between two starters. Abstract names live in a network namespace: containers that share a
 *   data dir must share the network namespace too to see each other's lock.
 * - Windows: a named pipe named the same way (the pipe namespace is machine-wide).
 * - Other systems (macOS, BSDs): a socket file `lock.sock` in the dir. One left by a crash
 *   refuses connections (ECONNREFUSED), which proves no holder: it is removed and bound again.
 *   Two starters that both find such a file at the same instant may both start; see
 *   docs/operations.md.
 *
 * The holder answers each connection with its pid, for the second process's message: read from
 * the live holder, it cannot be stale the way a pid file left by a crash is.
 */
import { createHash } from "node:crypto";
import { realpathSync, statSync, unlinkSync } from "node:fs";
import { createConnection, createServer, type Server } from "node:net";
import { join } from "node:path";
import { makePrivateDir } from "./data-dir.js";

/** A second process asked for a data dir another process holds. */
export class DataDirInUse extends Error {
  readonly code = "data_dir_in_use";
  constructor(
    /** The dir's real path (symlinks resolved). */
    readonly dataDir: string,
    /** The holder's pid as the holder sees it; undefined when it did not say in time. */
    readonly holderPid: number | undefined,
  ) {
    const holder = holderPid === undefined ? "another process (its pid did not answer)" : `another process (pid ${holderPid})`;
    super(`the data dir ${dataDir} is in use by ${holder}; stop it first, or set TALKHUB_DATA_DIR to another dir`);
    this.name = "DataDirInUse";
  }
}

export interface DataDirLock {
  /** Where the lock lives: an abstract socket name (after "@"), a pipe or a socket file. */
  readonly address: string;
  /** Stops holding the dir; a new process may take it. */
  release(): Promise<void>;
}

/** How the lock is held: see the file comment. Tests pick "file" to cover the other systems' way on Linux. */
export type LockKind = "abstract" | "pipe" | "file";

const platformKind: LockKind = process.platform === "linux" ? "abstract" : process.platform === "win32" ? "pipe" : "file";

/** The socket address of the lock on a dir (whose real path is `realDir`). */
function lockAddress(realDir: string, kind: LockKind): string {
  if (kind === "file") return join(realDir, "lock.sock");
  const { dev, ino } = statSync(realDir, { bigint: true });
  const id = createHash("sha512").update(`${dev}:${ino}`).digest("hex");
  // 108 bytes fill sun_path exactly: Node versions that pad an abstract name with NULs and
  // those that bind its exact length then bind the same address.
  return kind === "abstract" ? `\0talkhub-data-dir-${id}`.slice(0, 108) : `\\\\?\\pipe\\talkhub-data-dir-${id.slice(0, 32)}`;
}

function errorCode(error: unknown): unknown {
  return typeof error === "object" && error !== null && "code" in error ? error.code : undefined;
}

/** Listens on `address`; resolves with the server, or "in use" when another socket has it. */
function listenOn(address: string): Promise<Server | "in use"> {
  return new Promise((resolve, reject) => {
    const server = createServer((socket) => {
      socket.on("error", () => undefined);
      socket.end(`${process.pid}\n`);
    });
    server.once("error", (error) => (errorCode(error) === "EADDRINUSE" ? resolve("in use") : reject(error)));
    // exclusive: in a cluster worker, listen() would otherwise share the primary's handle.
    server.listen({ path: address, exclusive: true }, () => {
      // The lock must not keep the process alive on its own.
      server.unref();
      resolve(server);
    });
  });
}

/** Asks the holder for its pid: a number, "no holder" when nothing listens there, or undefined. */
function askHolder(address: string, timeoutMs = 2000): Promise<number | "no holder" | undefined> {
  return new Promise((resolve) => {
    let text = "";
    const socket = createConnection({ path: address });
    socket.setTimeout(timeoutMs, () => socket.destroy());
    socket.on("data", (chunk: Buffer) => (text += chunk.toString()));
    socket.on("error", (error) => {
      const code = errorCode(error);
      resolve(code === "ECONNREFUSED" || code === "ENOENT" ? "no holder" : undefined);
    });
    socket.on("close", () => {
      const pid = Number.parseInt(text, 10);
      resolve(Number.isSafeInteger(pid) && pid > 0 ? pid : undefined);
    });
  });
}

/**
 * Takes the exclusive lock on `dataDir` (creating the dir, owner-only, when missing), or throws
 * DataDirInUse when another process holds it.
 */
export async function lockDataDir(dataDir: string, kind: LockKind = platformKind): Promise<DataDirLock> {
  makePrivateDir(dataDir);
  const realDir = realpathSync(dataDir);
  const address = lockAddress(realDir, kind);
  // A holder that dies between our bind and our question frees the address: try again.
  for (let attempt = 1; ; attempt++) {
    const listened = await listenOn(address);
    if (listened !== "in use") return held(listened, kind === "abstract" ? `@${address.slice(1)}` : address);
    const holder = await askHolder(address);
    if (holder !== "no holder" || attempt === 3) throw new DataDirInUse(realDir, holder === "no holder" ? undefined : holder);
    // A socket file outlives its process; a refused connection proves it is left over.
    if (kind === "file") removeLeftover(address);
  }
}

function removeLeftover(path: string): void {
  try {
    unlinkSync(path);
  } catch (error) {
    if (errorCode(error) !== "ENOENT") throw error;
  }
}

function held(server: Server, address: string): DataDirLock {
  return {
    address,
    release: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
