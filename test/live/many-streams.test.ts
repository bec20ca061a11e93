/**
 * Many streams, cheaply: 10,000 WatchTalk streams opened at once by 1,000 agents on 1,000 talks
 * (each talk has 10 members, each agent watches its 10 talks) over a dozen HTTP/2 connections
 * all open, none refused; what they read when they open (the talk views, the feeds' heads) is
 * read in batches, so the statements sent while they open are far fewer than the streams.
 *
 * The client is a lean one (a raw node:http2 request per stream): 10,000 streams through the
 * Connect client would cost the shared two cores more than the server they measure.
 */
import http2 from "node:http2";
import { create, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { WatchEventsRequestSchema, WatchTalkRequestSchema } from "../../gen/talk/v1/talk_service_pb.js";
import { envelope } from "../../src/http/grpc-envelope.js";
import { liveBackends, must, newCustomer, useService, type TestAgent } from "../support/harness.js";
import { pool } from "../support/processes.js";

const backends = (await liveBackends()).filter((b) => b === "postgres");

const agentCount = 1_000;
const talkCount = 1_000;
const membersPerTalk = 10;
const connections = 12;

type Outcome = { readonly opened: true } | { readonly opened: false; readonly status: string; readonly message: string };

const watchTalk = (chatId: string, afterSeq: bigint) =>
  ({ method: "WatchTalk", body: toBinary(WatchTalkRequestSchema, create(WatchTalkRequestSchema, { chatId, afterSeq })) }) as const;
const watchEvents = () =>
  ({ method: "WatchEvents", body: toBinary(WatchEventsRequestSchema, create(WatchEventsRequestSchema, { cursor: "" })) }) as const;

/** Opens a stream on `session`; resolves at its first response (opened) or its end (refused). */
function openStream(
  session: http2.ClientHttp2Session,
  token: string,
  call: { method: string; body: Uint8Array },
): { outcome: Promise<Outcome>; close: () => void } {
  const request = session.request({
    ":method": "POST",
    ":path": `/talk.v1.TalkService/${call.method}`,
    "content-type": "application/grpc",
    te: "trailers",
    authorization: `Bearer ${token}`,
  });
  request.end(envelope(call.body));
  const outcome = new Promise<Outcome>((resolve) => {
    let status = "";
    let message = "";
    request.on("response", (headers) => {
      status = String(headers["grpc-status"] ?? "");
      message = String(headers["grpc-message"] ?? "");
    });
    request.on("trailers", (trailers) => {
      status = String(trailers["grpc-status"] ?? status);
      message = String(trailers["grpc-message"] ?? message);
    });
    request.once("data", () => resolve({ opened: true }));
    request.on("close", () =>
      resolve({ opened: false, status: status === "" ? "no status" : status, message: decodeURIComponent(message) }),
    );
    request.on("error", () => undefined);
  });
  return { outcome, close: () => request.close(http2.constants.NGHTTP2_CANCEL) };
}

/** Waits for every stream's first response or end; what it took, from `before` statements and `started` ms. */
async function settleWith(statements: () => number, streams: readonly { outcome: Promise<Outcome> }[], before: number, started: number) {
  const outcomes = await Promise.all(streams.map((s) => s.outcome));
  const openMs = Date.now() - started;
  const used = statements() - before;
  const refused = outcomes.filter((o): o is Extract<Outcome, { opened: false }> => !o.opened);
  const byCode = new Map<string, number>();
  for (const r of refused) byCode.set(`${r.status} ${r.message}`, (byCode.get(`${r.status} ${r.message}`) ?? 0) + 1);
  return { count: outcomes.length, openMs, used, refused, describe: () => JSON.stringify([...byCode]) };
}

describe.each(backends)("10,000 streams opening at once on %s", (backend) => {
  let statements = 0;
  const env = useService(backend, {
    // The directory entry of a caller is refreshed at most every 10 minutes: the agents were
    // entered while the talks were made, and their streams need not enter them again.
    // The periodic sweeps (head check, membership re-check) run beyond the test, so the
    // statements counted are those of opening.
    live: { callerRecheckMs: 600_000, heartbeatMs: 60_000, gapCheckMs: 600_000, membershipCheckMs: 600_000 },
    onStatement: () => void statements++,
  });

  const settle = (streams: readonly { outcome: Promise<Outcome> }[], before: number, started: number) =>
    settleWith(() => statements, streams, before, started);

  it("all open, none refused, with far fewer statements than streams (then 1,000 WatchEvents feeds at once)", async () => {
    const customer = newCustomer();
    const agents: TestAgent[] = await pool(agentCount, 32, (i) => env.agent(customer, `Agent ${i}`, { via: "grpc" }));
    const member = (talk: number, k: number) => must(agents[(talk + k) % agentCount]);
    const talks = await pool(talkCount, 32, async (t) => {
      const created = await member(t, 0).talks.createTalk({
        type: "group",
        participantIds: Array.from({ length: membersPerTalk - 1 }, (_, k) => member(t, k + 1).id),
      });
      const talk = must(created.talk);
      return { id: talk.id, lastSeq: talk.lastSeq };
    });

    const connecting: Promise<void>[] = [];
    const sessions = Array.from({ length: connections }, () => {
      const session = http2.connect(env.url);
      session.on("error", () => undefined);
      connecting.push(new Promise((resolve) => session.once("connect", () => resolve())));
      return session;
    });
    const streams: ReturnType<typeof openStream>[] = [];
    try {
      await Promise.all(connecting);
      const before = statements;
      const started = Date.now();
      for (let t = 0; t < talkCount; t++) {
        for (let k = 0; k < membersPerTalk; k++) {
          const talk = must(talks[t]);
          streams.push(openStream(must(sessions[streams.length % connections]), member(t, k).token, watchTalk(talk.id, talk.lastSeq)));
        }
      }
      const talkStreams = await settle(streams, before, started);
      console.log(
        `WatchTalk: ${talkStreams.count} streams opened in ${talkStreams.openMs} ms with ${talkStreams.used} statements; refused: ${talkStreams.refused.length}`,
      );
      expect(talkStreams.refused.length, `refused: ${talkStreams.describe()}`).toBe(0);
      expect(talkStreams.count).toBe(talkCount * membersPerTalk);
      // One per stream would be 10,000 (20,000 with the feeds' heads); batches make it a few hundred at most.
      expect(talkStreams.used, "statements sent while the WatchTalk streams opened").toBeLessThan(talkStreams.count / 20);

      // Then every agent's feed at once: each follows its 10 talks (memberships, departures and
      // the feeds' heads read in batches too).
      for (const stream of streams.splice(0)) stream.close();
      const feedsBefore = statements;
      const feedsStarted = Date.now();
      for (const [i, agent] of agents.entries()) streams.push(openStream(must(sessions[i % connections]), agent.token, watchEvents()));
      const feeds = await settle(streams, feedsBefore, feedsStarted);
      console.log(
        `WatchEvents: ${feeds.count} streams opened in ${feeds.openMs} ms with ${feeds.used} statements; refused: ${feeds.refused.length}`,
      );
      expect(feeds.refused.length, `refused: ${feeds.describe()}`).toBe(0);
      expect(feeds.used, "statements sent while the WatchEvents streams opened").toBeLessThan(feeds.count / 10);
    } finally {
      for (const stream of streams) stream.close();
      for (const session of sessions) session.close();
    }
  }, 120_000);
});
