/**
 * The variables the service knows: the same in src/config.ts, in the list that unknown
 * TALKHUB_* variables are checked against, and in docs/configuration.md; a typo is named with
 * the variable it most likely meant. readConfig reports every bad variable, not only the first.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { knownVariables, unknownVariables } from "../../src/config-variables.js";
import { InvalidConfig, readConfig } from "../../src/config.js";

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), "utf8");

describe("known variables", () => {
  it("are the variables docs/configuration.md documents", () => {
    const table = read("docs/configuration.md")
      .split("\n")
      .filter((line) => line.startsWith("| `"))
      .map((line) => line.split("|")[1] ?? "");
    const documented = table.flatMap((cell) => [...cell.matchAll(/`([A-Z0-9_]+)`/g)].map((m) => m[1]));
    expect([...documented].sort()).toEqual([...knownVariables].sort());
  });

  it("include every variable src/config.ts names", () => {
    const named = [...read("src/config.ts").matchAll(/"((?:TALKHUB_[A-Z0-9_]+)|NATS_URL|DATABASE_URL)"/g)].map((m) => m[1] ?? "");
    // writeRate(env, "TALKHUB_SEND", ...) reads TALKHUB_SEND_RATE and TALKHUB_SEND_BURST.
    const read_ = named.flatMap((name) => (knownVariables.includes(`${name}_RATE`) ? [`${name}_RATE`, `${name}_BURST`] : [name]));
    expect(read_.filter((name) => !knownVariables.includes(name))).toEqual([]);
  });
});

describe("unknown variables", () => {
  it("are the TALKHUB_* names the service does not read, with the nearest known name when close", () => {
    expect(
      unknownVariables({
        TALKHUB_LOG_LEVL: "debug",
        TALKHUB_DB_POOLSIZE: "5",
        TALKHUB_FOO: "1",
        TALKHUB_PORT: "8080",
        TALKHUB_TEST_DATABASE_URL: "postgres://x",
        PATH: "/bin",
        NATS_URLS: "nats://x",
      }),
    ).toEqual([
      { name: "TALKHUB_DB_POOLSIZE", suggestion: "TALKHUB_DB_POOL_SIZE" },
      { name: "TALKHUB_FOO", suggestion: undefined },
      { name: "TALKHUB_LOG_LEVL", suggestion: "TALKHUB_LOG_LEVEL" },
    ]);
  });
});

describe("readConfig", () => {
  it("names every variable that cannot be used, each once", () => {
    let thrown: unknown;
    try {
      readConfig({
        TALKHUB_PORT: "x",
        NATS_URL: "nats://",
        TALKHUB_HEADERS_TIMEOUT_MS: "30000",
        TALKHUB_REQUEST_TIMEOUT_MS: "5000",
        TALKHUB_EDIT_BURST: "0",
      });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(InvalidConfig);
    expect((thrown as InvalidConfig).problems.map((p) => p.variable)).toEqual([
      "TALKHUB_PORT",
      "NATS_URL",
      "TALKHUB_EDIT_BURST",
      "TALKHUB_HEADERS_TIMEOUT_MS",
    ]);
  });

  it("accepts NATS servers as URLs or host:port, comma-separated", () => {
    expect(readConfig({ NATS_URL: "nats://a:4222, b:4223,tls://c" }).natsUrl).toBe("nats://a:4222, b:4223,tls://c");
  });
});
