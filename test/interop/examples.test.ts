/**
 * The examples in examples/ run against a Talkhub service, as a client team would run them:
 * the grpc-js microservice (proto-loader on proto/ + third_party/) and the Connect-Node bot as
 * child processes, the Connect-Web page bundled with esbuild and loaded in Debian's Chromium
 * (playwright-core, never a downloaded browser) from an origin of its own.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { copyFile, mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { build } from "esbuild";
import { chromiumPath, launchChromium } from "../support/chromium.js";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { createTalk, newCustomer, sendText, useService, type TestAgent } from "../support/harness.js";

const repo = fileURLToPath(new URL("../..", import.meta.url));
const haveChromium = existsSync(chromiumPath);
if (!haveChromium) {
  if (process.env["CI"] === "true") throw new Error(`Chromium not found at ${chromiumPath} (CI=true makes this fatal)`);
  console.warn(`!!! CHROMIUM NOT FOUND at ${chromiumPath}: the browser example is SKIPPED (apt-get install -y chromium)`);
}

interface Running {
  readonly child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

const started: Running[] = [];

/** Starts `node <args>` in the repository and waits for its "ready" line. */
async function runExample(args: readonly string[], env: Record<string, string>): Promise<Running> {
  const child = spawn(process.execPath, args, { cwd: repo, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const running: Running = {
    child,
    output: () => output,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, "SIGKILL");
      await exited;
    },
  };
  started.push(running);
  await vi.waitFor(
    () => {
      if (child.exitCode !== null) throw new Error(`the example exited (${child.exitCode}):\n${output}`);
      expect(output, "the example's ready line").toMatch(/^ready$/m);
    },
    { timeout: 30_000, interval: 50 },
  );
  return running;
}

afterEach(async () => {
  await Promise.all(started.splice(0).map((running) => running.stop()));
});

/** The texts of a talk's messages written by `author`, oldest first. */
async function textsBy(reader: TestAgent, chatId: string, author: TestAgent): Promise<string[]> {
  const { result } = await reader.messages.listMessages({ chatId, pageSize: 200 });
  return result
    .filter((m) => m.ownerId === author.id)
    .map((m) => m.text)
    .reverse();
}

describe("examples against a Talkhub service", () => {
  const env = useService("pglite");

  it("grpc-js-service: the proto-loader bot answers !ping with pong in the thread, once, and nothing else", async () => {
    const customer = newCustomer();
    const [alice, bot] = await Promise.all([env.agent(customer, "Alice"), env.agent(customer, "Pingbot")]);
    const talk = await createTalk(alice, [bot], "normal");
    const address = new URL(env.url).host;
    await runExample(["examples/grpc-js-service/main.mjs"], { TALKHUB_GRPC_ADDRESS: address, TALKHUB_TOKEN: bot.token });

    await sendText(alice, talk.id, "hello");
    const ping = await sendText(alice, talk.id, "!ping");
    await vi.waitFor(async () => expect(await textsBy(alice, talk.id, bot)).toContain("pong"), { timeout: 15_000, interval: 100 });
    const { result } = await alice.messages.listMessages({ chatId: talk.id, parentId: ping.id });
    expect(result.map((m) => [m.ownerId, m.text])).toEqual([[bot.id, "pong"]]);
    // Only the one reply: "hello" got none, and "pong" itself is not answered.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect((await textsBy(alice, talk.id, bot)).filter((t) => t === "pong")).toHaveLength(1);
  });

  it("connect-node: the bot on the client package welcomes an agent added to its group talk, once", async () => {
    const customer = newCustomer();
    const [alice, bot, carol] = await Promise.all([
      env.agent(customer, "Alice"),
      env.agent(customer, "Welcomebot"),
      env.agent(customer, "Carol"),
    ]);
    const talk = await createTalk(alice, [bot], "group");
    await runExample(["--import", "tsx", "examples/connect-node/main.ts"], { TALKHUB_URL: env.url, TALKHUB_TOKEN: bot.token });

    await alice.talks.addParticipant({ chatId: talk.id, agentId: carol.id });
    await vi.waitFor(async () => expect(await textsBy(carol, talk.id, bot)).toContain("Welcome, Carol!"), {
      timeout: 15_000,
      interval: 100,
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect((await textsBy(carol, talk.id, bot)).filter((t) => t === "Welcome, Carol!")).toHaveLength(1);
  });

  describe.skipIf(!haveChromium)("browser", () => {
    let dir = "";
    let server: Server | undefined;
    afterAll(async () => {
      await new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve())));
      if (dir !== "") await rm(dir, { recursive: true, force: true });
    });

    it("browser: the Connect-Web page, served from another origin, shows a talk's events live and sends", async () => {
      // The page typechecks with the DOM library, and bundles.
      await promisify(execFile)(process.execPath, [join(repo, "node_modules/typescript/bin/tsc"), "--noEmit", "-p", "examples/browser"], {
        cwd: repo,
        timeout: 120_000,
      });
      dir = await mkdtemp(join(tmpdir(), "talkhub-browser-example-"));
      await build({
        entryPoints: [join(repo, "examples/browser/main.ts")],
        bundle: true,
        format: "esm",
        target: "es2022",
        outfile: join(dir, "main.js"),
        logLevel: "warning",
      });
      await copyFile(join(repo, "examples/browser/index.html"), join(dir, "index.html"));
      const files = new Map([
        ["/", { file: "index.html", type: "text/html" }],
        ["/main.js", { file: "main.js", type: "text/javascript" }],
      ]);
      server = createServer((req, res) => {
        const entry = files.get(new URL(req.url ?? "/", "http://x").pathname);
        if (entry === undefined) return void res.writeHead(404).end();
        void readFile(join(dir, entry.file)).then((body) => res.writeHead(200, { "content-type": entry.type }).end(body));
      });
      await new Promise<void>((resolve) => server?.listen(0, "127.0.0.1", resolve));
      const address = server.address();
      const origin = `http://127.0.0.1:${typeof address === "object" && address !== null ? address.port : 0}`;

      const customer = newCustomer();
      const [alice, bob] = await Promise.all([env.agent(customer, "Alice"), env.agent(customer, "Bob")]);
      const talk = await createTalk(alice, [bob], "normal");
      await sendText(alice, talk.id, "before the page");

      const browser = await launchChromium();
      try {
        const page = await (await browser.newContext()).newPage();
        const pageErrors: string[] = [];
        page.on("pageerror", (error) => pageErrors.push(error.message));
        // Talkhub on 127.0.0.1:<its port>, the page on another port: a cross-origin page.
        await page.goto(`${origin}/#${new URLSearchParams({ url: env.url, token: bob.token, talk: talk.id }).toString()}`);
        await page.locator("#status", { hasText: "live" }).waitFor({ timeout: 15_000 });
        // The replay from seq 1: the joins' system messages, then Alice's message.
        await page.locator("#events li", { hasText: "message_created: before the page" }).waitFor({ timeout: 10_000 });
        await sendText(alice, talk.id, "while the page watches");
        await page.locator("#events li", { hasText: "message_created: while the page watches" }).waitFor({ timeout: 10_000 });

        await page.locator("#send input").fill("from the page");
        await page.locator("#send button").click();
        await vi.waitFor(async () => expect(await textsBy(alice, talk.id, bob)).toEqual(["from the page"]), {
          timeout: 10_000,
          interval: 100,
        });
        await page.locator("#events li", { hasText: "message_created: from the page" }).waitFor({ timeout: 10_000 });

        const seqs = await Promise.all(
          (await page.locator("#events li").all()).map(async (item) => Number(await item.getAttribute("data-seq"))),
        );
        expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
        expect(await page.locator("#error").textContent()).toBe("");
        expect(pageErrors).toEqual([]);
      } finally {
        await browser.close();
      }
    }, 120_000);
  });
});
