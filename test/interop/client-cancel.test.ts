/**
 * A call cancelled by a client that is not ours is CANCELED: logged at info (never a level-50
 * line with a stack) and counted as canceled in /metrics, also on connect's path (the
 * bidirectional reflection stream, a gzip-compressed call). Clients: @grpc/grpc-js's
 * call.cancel() and `buf curl` killed by its PID. The same real log shows the trace id of a W3C
 * traceparent.
 */
import { spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mintToken } from "../../src/auth/tokens.js";
import { must } from "../support/harness.js";
import { spawnTalkhub, type TalkhubProcess } from "../support/processes.js";
import { metricValue, rest, type Json } from "../support/rest-helpers.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
/** buf's own binary (not the node wrapper), so that its PID is the process that dies. */
const bufBinary = `${root}node_modules/@bufbuild/buf-linux-${process.arch === "arm64" ? "aarch64" : "x64"}/bin/buf`;

function logLines(output: string): Json[] {
  return output
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as Json);
}

function clientOf(address: string, files: string[], pkg: string[], name: string, options: grpc.ClientOptions = {}): grpc.Client {
  const definition = protoLoader.loadSync(files, { includeDirs: [`${root}proto`, `${root}third_party`], keepCase: true });
  let node: grpc.GrpcObject = grpc.loadPackageDefinition(definition);
  for (const part of pkg) node = node[part] as grpc.GrpcObject;
  return new (node[name] as grpc.ServiceClientConstructor)(address, grpc.credentials.createInsecure(), options);
}

describe("client cancels and trace ids in the real log", () => {
  const secret = randomBytes(32).toString("hex");
  let proc: TalkhubProcess | undefined;
  let operatorUrl = "";
  let token = "";

  beforeAll(async () => {
    proc = await spawnTalkhub({ TALKHUB_JWT_SECRET: secret, TALKHUB_LOG_LEVEL: "info" }, 90_000);
    operatorUrl = `http://127.0.0.1:${must(/operator endpoints .*? on 127\.0\.0\.1:(\d+),/.exec(proc.output())?.[1], "operator port")}`;
    token = await mintToken(secret, { customerId: randomUUID(), agentId: randomUUID(), name: "Ann" });
  }, 120_000);
  afterAll(() => proc?.stop(), 30_000);

  /** The rpc log line of a request id, once it is written. */
  async function loggedCall(requestId: string): Promise<Json> {
    const service = must(proc, "service");
    await expect
      .poll(() => logLines(service.output()).some((line) => line.request_id === requestId), { timeout: 15_000, interval: 100 })
      .toBe(true);
    return logLines(service.output()).find((line) => line.request_id === requestId);
  }

  async function metrics(): Promise<string> {
    return (await rest(operatorUrl, "GET", "/metrics")).text;
  }

  function expectNoErrorLines(): void {
    const errors = logLines(must(proc, "service").output()).filter((line) => Number(line.level) >= 50);
    expect(errors, JSON.stringify(errors).slice(0, 2000)).toEqual([]);
  }

  it("grpc-js call.cancel(): a gzip-compressed watch is CANCELED at info, the reflection stream no error", async () => {
    const address = new URL(must(proc, "service").url).host;
    const reflection = clientOf(address, ["grpc/reflection/v1/reflection.proto"], ["grpc", "reflection", "v1"], "ServerReflection");
    const talks = clientOf(address, ["talk/v1/talk_service.proto"], ["talk", "v1"], "TalkService", {
      "grpc.default_compression_algorithm": 2,
    });
    try {
      const reflectionId = `reflect-${randomUUID()}`;
      const metadata = new grpc.Metadata();
      metadata.set("x-request-id", reflectionId);
      const stream = (reflection as unknown as Record<string, (m: grpc.Metadata) => grpc.ClientDuplexStream<object, Json>>)[
        "ServerReflectionInfo"
      ]?.call(reflection, metadata);
      const listed = new Promise<Json>((resolve) => must(stream, "reflection stream").once("data", resolve));
      stream?.on("error", () => undefined);
      stream?.write({ list_services: "" });
      expect(JSON.stringify(await listed)).toContain("talk.v1.TalkService");
      // Mid-call: the request stream is still open.
      stream?.cancel();

      const watchId = `watch-${randomUUID()}`;
      const watchMetadata = new grpc.Metadata();
      watchMetadata.set("authorization", `Bearer ${token}`);
      watchMetadata.set("x-request-id", watchId);
      const watch = (talks as unknown as Record<string, (r: object, m: grpc.Metadata) => grpc.ClientReadableStream<Json>>)[
        "WatchEvents"
      ]?.call(talks, {}, watchMetadata);
      watch?.on("error", () => undefined);
      await new Promise((resolve) => must(watch, "watch").once("data", resolve));
      watch?.cancel();

      // grpc-js half-closes the request stream before it resets it: the reflection handler may
      // finish (ok) before the reset arrives. Either way it is no error of the service.
      const reflected = await loggedCall(reflectionId);
      expect(reflected).toMatchObject({ level: 30, method: "grpc.reflection.v1.ServerReflection/ServerReflectionInfo" });
      expect(["ok", "canceled"]).toContain(reflected.code);
      expect(await loggedCall(watchId)).toMatchObject({ level: 30, code: "canceled", method: "talk.v1.TalkService/WatchEvents" });
      expectNoErrorLines();
      const text = await metrics();
      expect(
        metricValue(text, "talkhub_rpc_requests_total", { method: "talk.v1.TalkService/WatchEvents", code: "canceled" }),
      ).toBeGreaterThanOrEqual(1);
      expect(metricValue(text, "talkhub_rpc_requests_total", { code: "internal" })).toBe(0);
    } finally {
      reflection.close();
      talks.close();
    }
  }, 60_000);

  it.each(["grpc", "connect"])(
    "buf curl (%s, schema from reflection) killed by its PID mid-stream: CANCELED at info",
    async (protocol) => {
      const service = must(proc, "service");
      const requestId = `buf-${protocol}-${randomUUID()}`;
      const args = [
        "curl",
        "--protocol",
        protocol,
        ...(protocol === "grpc" ? ["--http2-prior-knowledge"] : []),
        "-H",
        `Authorization: Bearer ${token}`,
        "-H",
        `x-request-id: ${requestId}`,
        "-d",
        "{}",
        `${service.url}/talk.v1.TalkService/WatchEvents`,
      ];
      const child = spawn(bufBinary, args, { stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
      child.stderr.on("data", (chunk: Buffer) => (out += chunk.toString()));
      const exited = new Promise((resolve) => child.once("exit", resolve));
      try {
        // The first message (a heartbeat) is out: the call is on.
        await expect.poll(() => out, { timeout: 45_000, interval: 100 }).toContain("heartbeat");
      } finally {
        process.kill(must(child.pid, "buf pid"), "SIGKILL");
        await exited;
      }
      expect(await loggedCall(requestId)).toMatchObject({ level: 30, code: "canceled", method: "talk.v1.TalkService/WatchEvents" });
      // buf's reflection stream died with it.
      await expect
        .poll(
          async () =>
            metricValue(await metrics(), "talkhub_rpc_requests_total", {
              method: "grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
              code: "canceled",
            }),
          { timeout: 15_000 },
        )
        .toBeGreaterThanOrEqual(1);
      expectNoErrorLines();
      expect(metricValue(await metrics(), "talkhub_rpc_requests_total", { code: "internal" })).toBe(0);
    },
    90_000,
  );

  it("logs the trace id of a W3C traceparent (grpc-js metadata, Connect header)", async () => {
    const service = must(proc, "service");
    const traceId = randomBytes(16).toString("hex");
    const requestId = `trace-${randomUUID()}`;
    const reply = await rest(service.url, "POST", "/talk.v1.TalkService/ListTalks", {
      bearer: token,
      headers: {
        "Content-Type": "application/json",
        "X-Request-Id": requestId,
        traceparent: `00-${traceId}-${randomBytes(8).toString("hex")}-01`,
      },
      body: "{}",
    });
    expect(reply.status).toBe(200);
    expect(await loggedCall(requestId)).toMatchObject({ code: "ok", trace_id: traceId });

    const grpcTrace = randomBytes(16).toString("hex");
    const grpcId = `trace-grpc-${randomUUID()}`;
    const talks = clientOf(new URL(service.url).host, ["talk/v1/talk_service.proto"], ["talk", "v1"], "TalkService");
    const metadata = new grpc.Metadata();
    metadata.set("authorization", `Bearer ${token}`);
    metadata.set("x-request-id", grpcId);
    metadata.set("traceparent", `00-${grpcTrace}-${randomBytes(8).toString("hex")}-00`);
    try {
      await new Promise((resolve, reject) =>
        (talks as unknown as Record<string, (r: object, m: grpc.Metadata, cb: (e: Error | null) => void) => void>)["ListTalks"]?.call(
          talks,
          {},
          metadata,
          (e) => (e === null ? resolve(undefined) : reject(e)),
        ),
      );
    } finally {
      talks.close();
    }
    expect(await loggedCall(grpcId)).toMatchObject({ code: "ok", trace_id: grpcTrace });
  }, 60_000);
});
