/**
 * Whether the servers the suites need answer: the shared Postgres, the shared NATS, and the
 * nats-server binary for suites that start a private one. Under CI=true a missing one throws
 * (the file fails); otherwise a loud warning is printed and the suite is skipped.
 */
import { existsSync } from "node:fs";
import { connect as tcpConnect } from "node:net";
import pg from "pg";
import { recordNotRun } from "./not-run-summary.js";

export const postgresAdminUrl = process.env["TALKHUB_TEST_DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test";
export const sharedNatsUrl = process.env["TALKHUB_TEST_NATS_URL"] ?? "nats://127.0.0.1:4222";
export const natsServerBinary = "/usr/sbin/nats-server";

async function postgresProblem(): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: postgresAdminUrl, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query("SELECT 1");
    return undefined;
  } catch (error) {
    return `Postgres at ${postgresAdminUrl}: ${String(error)}`;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Connects to a NATS URL and waits for the server's INFO line. */
export async function natsProblem(natsUrl: string): Promise<string | undefined> {
  const url = new URL(natsUrl);
  const port = Number(url.port === "" ? "4222" : url.port);
  return new Promise((resolve) => {
    const socket = tcpConnect({ host: url.hostname, port });
    const done = (problem: string | undefined) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(problem);
    };
    const timer = setTimeout(() => done(`NATS at ${natsUrl}: no INFO within 3 s`), 3000);
    socket.once("data", (data) => done(data.toString().startsWith("INFO") ? undefined : `NATS at ${natsUrl}: unexpected greeting`));
    socket.once("error", (error) => done(`NATS at ${natsUrl}: ${String(error)}`));
  });
}

/**
 * Whether the suite's dependencies answer. Under CI=true a missing one throws (the file fails);
 * otherwise it prints a loud warning and returns false (the suite is skipped).
 */
export async function dependenciesReachable(
  suite: string,
  needs: { postgres?: boolean; sharedNats?: boolean; natsServerBinary?: boolean },
): Promise<boolean> {
  const problems: string[] = [];
  if (needs.postgres === true) {
    const problem = await postgresProblem();
    if (problem !== undefined) problems.push(`POSTGRES UNREACHABLE: ${problem}`);
  }
  if (needs.sharedNats === true) {
    const problem = await natsProblem(sharedNatsUrl);
    if (problem !== undefined) problems.push(`NATS UNREACHABLE: ${problem}`);
  }
  if (needs.natsServerBinary === true && !existsSync(natsServerBinary)) {
    problems.push(`NATS-SERVER BINARY UNREACHABLE: ${natsServerBinary} does not exist`);
  }
  if (problems.length === 0) return true;
  if (process.env["CI"] === "true") {
    throw new Error(`${suite}: ${problems.join("; ")} (CI=true makes this fatal)`);
  }
  for (const problem of problems) {
    console.warn(`!!! ${problem}: ${suite} suite SKIPPED (set CI=true to make this fail)`);
  }
  recordNotRun(`${suite} (${problems.join("; ")})`);
  return false;
}
