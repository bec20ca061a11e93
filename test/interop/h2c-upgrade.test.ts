/**
 * HTTP/1.1 requests that offer `Upgrade: h2c`, as the JDK's java.net.http.HttpClient and
 * `curl --http2` do on http:// URLs, are answered as plain HTTP/1.1 (the offer declined), on
 * every path, bodies and keep-alive included. The JDK client runs from a single-file Java
 * program (test/interop/clients/JdkHttpClient.java).
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { newCustomer, useService } from "../support/harness.js";
import { runs, toolPresent } from "../support/external-tools.js";

const run = promisify(execFile);
const clients = fileURLToPath(new URL("./clients", import.meta.url));
const haveJdk = toolPresent(
  "h2c-upgrade (JDK HttpClient)",
  "java (a JDK)",
  runs("javac", ["-version"]),
  "apt-get install -y openjdk-17-jdk-headless",
);

/** `curl --http2` on an http:// URL: its first request offers Upgrade: h2c. */
async function curlHttp2(args: readonly string[]): Promise<{ status: string; version: string; body: string }> {
  const { stdout } = await run("curl", ["-sS", "--http2", "--max-time", "30", "-w", "\n%{http_code} %{http_version}", ...args], {
    timeout: 60_000,
  });
  const lines = stdout.split("\n");
  const [status = "", version = ""] = (lines.pop() ?? "").split(" ");
  return { status, version, body: lines.join("\n") };
}

describe("Upgrade: h2c is answered as plain HTTP/1.1", () => {
  const env = useService("pglite");

  it("curl --http2: /healthz, a Connect call with a body and a REST call each get their answer", async () => {
    const ann = await env.agent(newCustomer(), "Ann");
    const health = await curlHttp2(["-v", `${env.url}/healthz`]);
    expect(health).toMatchObject({ status: "200", version: "1.1" });
    expect(JSON.parse(health.body)).toEqual({ status: "ok" });

    const body = JSON.stringify({ name: "over curl --http2" });
    const created = await curlHttp2([
      "-H",
      `Authorization: Bearer ${ann.token}`,
      "-H",
      "Content-Type: application/json",
      "-d",
      body,
      `${env.url}/talk.v1.TalkService/CreateTalk`,
    ]);
    expect(created).toMatchObject({ status: "200", version: "1.1" });
    const talk = (JSON.parse(created.body) as { talk: { id: string; name: string } }).talk;
    expect(talk.name).toBe("over curl --http2");

    // Two requests on one connection: the second (no offer any more) is read as well.
    const { stdout } = await run(
      "curl",
      [
        "-sS",
        "--http2",
        "--max-time",
        "30",
        "-H",
        `Authorization: Bearer ${ann.token}`,
        `${env.url}/v1.0/talks/${talk.id}`,
        `${env.url}/healthz`,
      ],
      { timeout: 60_000 },
    );
    expect(stdout).toContain(`"id":"${talk.id}"`);
    expect(stdout).toContain(`{"status":"ok"}`);
  }, 60_000);

  it.runIf(haveJdk)(
    "the JDK's HttpClient with its defaults: health, REST and Connect",
    async () => {
      const ann = await env.agent(newCustomer(), "Ann");
      const { stdout } = await run("java", ["JdkHttpClient.java", env.url, ann.token], { cwd: clients, timeout: 150_000 });
      const answers = new Map(
        stdout
          .trim()
          .split("\n")
          .map((line) => [line.split(" ")[0], line.split(" ").slice(1)]),
      );
      expect(answers.get("healthz")?.slice(0, 2)).toEqual(["200", "HTTP_1_1"]);
      expect(answers.get("rest")?.slice(0, 2)).toEqual(["200", "HTTP_1_1"]);
      expect(answers.get("connect")?.slice(0, 2)).toEqual(["200", "HTTP_1_1"]);
      expect(answers.get("connect")?.join(" ")).toContain('"result":[]');
    },
    180_000,
  );
});
