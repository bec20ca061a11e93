/**
 * Credentials end streams: an open WatchTalk/WatchEvents stream ends with UNAUTHENTICATED and a
 * message the client can act on when the caller's token expires (gRPC via grpc-js and the
 * direct path, Connect, REST), and when the caller's agent is deleted, also when the stream is
 * held by another process than the one that deleted it.
 */
import http from "node:http";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  WatchEventsRequestSchema,
  WatchEventsResponseSchema,
  WatchTalkRequestSchema,
  WatchTalkResponseSchema,
} from "../../gen/talk/v1/talk_service_pb.js";
import { mintToken } from "../../src/auth/tokens.js";
import { Unauthenticated } from "../../src/domain/model/errors.js";
import type { AgentId, CustomerId } from "../../src/domain/model/ids.js";
import { StreamQuota } from "../../src/domain/stream-quota.js";
import { WatchScope } from "../../src/live/watch-scope.js";
import { Code, createTalk, liveBackends, newCustomer, useService, type TestAgent, type TestEnv } from "../support/harness.js";
import { FeedWatcher, TalkWatcher, lastSeqOf } from "../support/live-helpers.js";

const backends = await liveBackends();

const expiredMessage = "the token has expired; reconnect with a new token";

/** A WatchTalk (or WatchEvents) over grpc-js; resolves with the status it ended with. */
function grpcJsWatch(
  address: string,
  token: string,
  chatId: string | undefined,
): { opened: Promise<void>; ended: Promise<grpc.StatusObject>; close(): void } {
  const client = new grpc.Client(address, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${token}`);
  const call =
    chatId === undefined
      ? client.makeServerStreamRequest(
          "/talk.v1.TalkService/WatchEvents",
          (bytes: Uint8Array) => Buffer.from(bytes),
          (bytes: Buffer) => fromBinary(WatchEventsResponseSchema, bytes),
          toBinary(WatchEventsRequestSchema, create(WatchEventsRequestSchema, {})),
          metadata,
        )
      : client.makeServerStreamRequest(
          "/talk.v1.TalkService/WatchTalk",
          (bytes: Uint8Array) => Buffer.from(bytes),
          (bytes: Buffer) => fromBinary(WatchTalkResponseSchema, bytes),
          toBinary(WatchTalkRequestSchema, create(WatchTalkRequestSchema, { chatId })),
          metadata,
        );
  call.on("error", () => undefined);
  return {
    opened: new Promise((resolve) => call.once("data", () => resolve())),
    ended: new Promise((resolve) => call.once("status", resolve)),
    close: () => {
      call.cancel();
      client.close();
    },
  };
}

/** A REST NDJSON stream read in the background; `lines` grows as lines arrive. */
function restWatch(
  baseUrl: string,
  token: string,
  path: string,
): { lines: Record<string, unknown>[]; ended: Promise<void>; close(): void } {
  const lines: Record<string, unknown>[] = [];
  let buffer = "";
  const request = http.get(`${baseUrl}${path}`, { headers: { authorization: `Bearer ${token}` }, agent: false });
  const ended = new Promise<void>((resolve) => {
    request.on("error", () => resolve());
    request.on("close", () => resolve());
    request.on("response", (response) => {
      response.setEncoding("utf8");
      response.on("data", (chunk: string) => {
        buffer += chunk;
        for (let end = buffer.indexOf("\n"); end >= 0; end = buffer.indexOf("\n")) {
          lines.push(JSON.parse(buffer.slice(0, end)) as Record<string, unknown>);
          buffer = buffer.slice(end + 1);
        }
      });
      response.on("end", () => resolve());
      response.on("error", () => resolve());
    });
  });
  return { lines, ended, close: () => request.destroy() };
}

const errorOf = (lines: readonly Record<string, unknown>[]): { code?: string; message?: string } | undefined =>
  lines.at(-1)?.["error"] as { code?: string; message?: string } | undefined;

function openStreams(env: TestEnv, agentId: string): number {
  return env.service.watch.streams.open(agentId as AgentId);
}

/** Ann (admin) and Bob in a talk. */
async function pairOn(env: TestEnv): Promise<{ ann: TestAgent; bob: TestAgent; chatId: string }> {
  const customer = newCustomer();
  const ann = await env.agent(customer, "Ann", { role: "admin", via: "grpc" });
  const bob = await env.agent(customer, "Bob", { via: "grpc" });
  return { ann, bob, chatId: (await createTalk(ann, [bob])).id };
}

const credentialsLive = { heartbeatMs: 1_000, gapCheckMs: 200 };

describe.each(backends)("credentials end streams on %s", (backend) => {
  const env = useService(backend, { live: credentialsLive });

  const pair = () => pairOn(env);

  it("a stream opened with a short-lived token ends UNAUTHENTICATED when the token expires (grpc-js, gRPC, Connect, REST)", {
    timeout: 30_000,
  }, async () => {
    const { bob, chatId } = await pair();
    const short = await mintToken(env.secret, {
      customerId: bob.customerId,
      agentId: bob.id,
      name: bob.name,
      role: "agent",
      expiresInSeconds: 3,
    });
    const viaGrpc: TestAgent = { ...bob, token: short, ...env.clients(short, "grpc") };
    const viaConnect: TestAgent = { ...bob, token: short, ...env.clients(short, "connect") };
    const watchers = [
      new TalkWatcher(viaGrpc, chatId, await lastSeqOf(bob, chatId)),
      new FeedWatcher(viaConnect),
      new FeedWatcher(viaGrpc),
    ];
    const address = new URL(env.service.url).host;
    const grpcJs = [grpcJsWatch(address, short, chatId), grpcJsWatch(address, short, undefined)];
    const rest = restWatch(env.service.url, short, `/v1.0/talks/${chatId}/events`);
    try {
      await Promise.all([
        ...watchers.map((w) =>
          vi.waitFor(() => expect(w.responses.length > 0, "a first response").toBe(true), { timeout: 10_000, interval: 20 }),
        ),
        ...grpcJs.map((g) => g.opened),
      ]);
      await vi.waitFor(() => expect(rest.lines.length > 0, "the first REST line").toBe(true), { timeout: 10_000, interval: 20 });
      for (const watcher of watchers) {
        const error = await watcher.waitEnd(15_000);
        expect(error === undefined ? "ended without error" : Code[error.code], error?.message).toBe("Unauthenticated");
        expect(error?.rawMessage).toBe(expiredMessage);
      }
      for (const call of grpcJs) {
        const status = await call.ended;
        expect(status.code).toBe(grpc.status.UNAUTHENTICATED);
        expect(status.details).toBe(expiredMessage);
      }
      await rest.ended;
      expect(errorOf(rest.lines)).toEqual({ code: "unauthenticated", message: expiredMessage });
      await expect.poll(() => openStreams(env, bob.id), { timeout: 10_000 }).toBe(0);
    } finally {
      await Promise.all(watchers.map((w) => w.abort()));
      for (const call of grpcJs) call.close();
      rest.close();
    }
  });

  it("deleting the agent ends its open streams with UNAUTHENTICATED", { timeout: 40_000 }, async () => {
    const { ann, bob, chatId } = await pair();
    const watchers = [new TalkWatcher(bob, chatId, await lastSeqOf(bob, chatId)), new FeedWatcher(env.as(bob, "connect"))];
    const rest = restWatch(env.service.url, bob.token, "/v1.0/events");
    try {
      await Promise.all(
        watchers.map((w) =>
          vi.waitFor(() => expect(w.responses.length > 0, "a first response").toBe(true), { timeout: 10_000, interval: 20 }),
        ),
      );
      await vi.waitFor(() => expect(rest.lines.length > 0, "the first REST line").toBe(true), { timeout: 10_000, interval: 20 });
      await ann.agents.deleteAgent({ id: bob.id });
      for (const watcher of watchers) {
        const error = await watcher.waitEnd(20_000);
        expect(error === undefined ? "ended without error" : Code[error.code], error?.message).toBe("Unauthenticated");
        expect(error?.rawMessage).toContain("removed");
      }
      await rest.ended;
      expect(errorOf(rest.lines)?.code).toBe("unauthenticated");
      expect(openStreams(env, bob.id)).toBe(0);
      // Ann's own streams go on.
      const annWatch = new FeedWatcher(ann);
      await annWatch.ready();
      await annWatch.abort();
    } finally {
      await Promise.all(watchers.map((w) => w.abort()));
      rest.close();
    }
  });
});

// A sibling process shares the database only on Postgres (the embedded database has one process).
describe.each(backends.filter((b) => b === "postgres"))("credentials end streams across processes on %s", (backend) => {
  const env = useService(backend, { live: credentialsLive });
  const pair = () => pairOn(env);

  it("a deletion made through another process ends the streams held here", { timeout: 40_000 }, async () => {
    const { ann, bob, chatId } = await pair();
    const other = await env.sibling();
    const watcher = new TalkWatcher(other.as(bob), chatId, await lastSeqOf(bob, chatId));
    try {
      await vi.waitFor(() => expect(watcher.responses.length > 0, "a first response").toBe(true), { timeout: 10_000, interval: 20 });
      expect(other.service.watch.streams.open(bob.id as AgentId)).toBe(1);
      await ann.agents.deleteAgent({ id: bob.id });
      const error = await watcher.waitEnd(20_000);
      expect(error === undefined ? "ended without error" : Code[error.code], error?.message).toBe("Unauthenticated");
      expect(other.service.watch.streams.open(bob.id as AgentId)).toBe(0);
    } finally {
      await watcher.abort();
    }
  });
});

describe("a stream's expiry timer", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("fires at an expiry past setTimeout's 2^31-1 ms limit, not at once, and releases the slot", () => {
    vi.useFakeTimers();
    const quota = new StreamQuota(1);
    const scope = new WatchScope([]);
    const agentId = "a" as AgentId;
    scope.hold(quota.acquire({ agentId, customerId: "c" as CustomerId, end: (reason) => scope.end(reason) }));
    const limit = 0x7fffffff;
    scope.endAt(Date.now() + limit + 5_000, () => new Unauthenticated(expiredMessage));
    vi.advanceTimersByTime(limit);
    expect(scope.ended).toBe(false);
    expect(quota.open(agentId)).toBe(1);
    vi.advanceTimersByTime(5_000);
    expect(scope.ended).toBe(true);
    expect((scope.signal.reason as Error).message).toBe(expiredMessage);
    expect(quota.open(agentId)).toBe(0);
  });

  it("never fires for a token without exp, and ends at once for one already expired", () => {
    vi.useFakeTimers();
    const forever = new WatchScope([]);
    forever.endAt(Infinity, () => new Unauthenticated(expiredMessage));
    expect(vi.getTimerCount()).toBe(0);
    const expired = new WatchScope([]);
    expired.endAt(Date.now() - 1, () => new Unauthenticated(expiredMessage));
    expect(expired.ended).toBe(true);
    expect(forever.ended).toBe(false);
  });
});
