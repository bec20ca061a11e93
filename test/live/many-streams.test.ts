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
import { WatchTalkRequestSchema } from "../../gen/talk/v1/talk_service_pb.js";
import { envelope } from "../../src/http/grpc-envelope.js";
import { liveBackends, must, newCustomer, useService, type TestAgent } from "../support/harness.js";
import { pool } from "../support/processes.js";

const backends = (await liveBackends()).filter((b) => b === "postgres");

const agentCount = 1_000;
const talkCount = 1_000;
const membersPerTalk = 10;
const connections = 12;

type Outcome = { readonly opened: true } | { readonly opened: false; readonly status: string; readonly message: string };

/** Opens WatchTalk on `session`; resolves at its first response (opened) or its end (refused). */
function openStream(session: http2.ClientHttp2Session, token: string, chatId: string, afterSeq: bigint): { outcome: Promise<Outcome>; close: () => void } {
  const request = session.request({
    ":method": "POST",
    ":path": "/talk.v1.TalkService/WatchTalk",
    "content-type": "application/grpc",
    te: "trailers",
    authorization: `Bearer ${token}`,
  });
  request.end(envelope(toBinary(WatchTalkRequestSchema, create(WatchTalkRequestSchema, { chatId, afterSeq }))));
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
    request.on("close", () => resolve({ opened: false, status: status === "" ? "no status" : status, message: decodeURIComponent(message) }));
    request.on("error", () => undefined);
  });
  return { outcome, close: () => request.close(http2.constants.NGHTTP2_CANCEL) };
}

describe.each(backends)("10,000 streams opening at once on %s", (backend) => {
  let statements = 0;
  const env = useService(backend, {
    // The directory entry of a caller is refreshed at most every 10 minutes: the agents were
    // entered while the talks were made, and their streams need not enter them again.
    live: { callerRecheckMs: 600_000, heartbeatMs: 60_000 },
    onStatement: () => void statements++,
  });

  it("all open, none refused, with far fewer statements than streams", async () => {
    const customer = newCustomer();
    const agents: TestAgent[] = await pool(agentCount, 32, (i) => env.agent(customer, `Agent ${i}`, { via: "grpc" }));
    const member = (talk: number, k: number) => must(agents[(talk + k) % agentCount]);
    const talks = await pool(talkCount, 32, async (t) => {
      const created = await member(t, 0).talks.createTalk({ type: "group", participantIds: Array.from({ length: membersPerTalk - 1 }, (_, k) => member(t, k + 1).id) });
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
          streams.push(openStream(must(sessions[streams.length % connections]), member(t, k).token, talk.id, talk.lastSeq));
        }
      }
      const outcomes = await Promise.all(streams.map((s) => s.outcome));
      const openMs = Date.now() - started;
      const used = statements - before;
      const refused = outcomes.filter((o): o is Extract<Outcome, { opened: false }> => !o.opened);
      const byCode = new Map<string, number>();
      for (const r of refused) byCode.set(`${r.status} ${r.message}`, (byCode.get(`${r.status} ${r.message}`) ?? 0) + 1);
      console.log(`${streams.length} streams opened in ${openMs} ms with ${used} statements; refused: ${refused.length}`);
      expect(refused.length, `refused: ${JSON.stringify([...byCode])}`).toBe(0);
      expect(outcomes.length).toBe(talkCount * membersPerTalk);
      // One per stream would be 10,000 (20,000 with the feeds' heads); batches make it a few hundred at most.
      expect(used, "statements sent while the streams opened").toBeLessThan(streams.length / 20);
    } finally {
      for (const stream of streams) stream.close();
      for (const session of sessions) session.close();
    }
  }, 120_000);
});
