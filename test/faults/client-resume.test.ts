/**
 * The client package's resume against a real restart: WatchTalk and WatchEvents opened through
 * createTalkhubClient, the Talkhub process SIGKILLed mid-stream and a new one started on the
 * same port and database, then stopped with SIGTERM (streams end with UNAVAILABLE) and started
 * again. The consumers must see every event once, in seq order, and the client must not have
 * needed its duplicate filter (the server resumed exactly where it was asked to).
 *
 * Runs on Postgres + NATS (an embedded database's first start takes too long on a loaded
 * machine to be restarted three times in a test).
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { Code, createTalkhubClient, type StreamStats, type TalkhubClient } from "../../clients/ts/src/index.js";
import {
  createTestDatabase,
  dependenciesReachable,
  describeSeqs,
  freePort,
  killAllChildren,
  newAgent,
  newPrefix,
  newSecret,
  range,
  sharedNatsUrl,
  spawnTalkhub,
  talkhubEnv,
  type AgentIdentity,
  type TalkhubProcess,
  type TestDatabase,
} from "../support/processes.js";

const ready = await dependenciesReachable("client-resume", { postgres: true, sharedNats: true });

interface Seen {
  readonly chatId: string;
  readonly seq: number;
  readonly type: string;
  readonly text: string;
}

/** Consumes a resumable stream in the background, recording its events and the errors it resumed from. */
function consume(
  stream: AsyncIterable<{
    kind:
      | { case: "event"; value: { chatId: string; seq: bigint; type: string; payload: { case: string | undefined; value?: unknown } } }
      | { case: string | undefined };
  }> & {
    readonly stats: StreamStats;
  },
  controller: AbortController,
) {
  const events: Seen[] = [];
  let responses = 0;
  let failure: unknown;
  const done = (async () => {
    try {
      for await (const response of stream) {
        responses += 1;
        if (response.kind.case !== "event" || !("value" in response.kind)) continue;
        const { chatId, seq, type, payload } = response.kind.value as {
          chatId: string;
          seq: bigint;
          type: string;
          payload: { case: string | undefined; value?: unknown };
        };
        const text = payload.case === "messageCreated" ? (payload.value as { text: string }).text : "";
        events.push({ chatId, seq: Number(seq), type, text });
      }
    } catch (error) {
      failure = error;
    }
  })();
  return {
    events,
    get failure() {
      return failure;
    },
    get responses() {
      return responses;
    },
    stats: () => stream.stats,
    stop: async () => {
      controller.abort();
      await done;
    },
  };
}

describe.skipIf(!ready)("client resume across a Talkhub restart", () => {
  const secret = newSecret();
  let env: Record<string, string> = {};
  let db: TestDatabase | undefined;
  let current: TalkhubProcess | undefined;
  let alice: AgentIdentity;
  let bob: AgentIdentity;

  beforeAll(async () => {
    const port = await freePort();
    db = await createTestDatabase();
    env = { ...talkhubEnv({ databaseUrl: db.url, natsUrl: sharedNatsUrl, secret, prefix: newPrefix() }), TALKHUB_PORT: String(port) };
    current = await spawnTalkhub(env);
    const customer = crypto.randomUUID();
    [alice, bob] = await Promise.all([newAgent(secret, customer, "Alice"), newAgent(secret, customer, "Bob")]);
  }, 60_000);

  afterAll(async () => {
    await current?.stop();
    await killAllChildren();
    await db?.drop();
  });

  const clientOf = (agent: AgentIdentity): TalkhubClient =>
    createTalkhubClient({ baseUrl: current?.url ?? "", token: agent.token, watch: { backoff: { initialMs: 50, maxMs: 500 } } });

  it("delivers every event once, in seq order, through a SIGKILL and a SIGTERM of the process", async () => {
    const a = clientOf(alice);
    const b = clientOf(bob);
    await b.talks.listTalks({}); // enters Bob into the directory
    const talk = (await a.talks.createTalk({ participantIds: [bob.id] })).talk;
    const chatId = talk?.id ?? "";
    const startSeq = Number(talk?.lastSeq ?? 0n);

    const resumedFrom: Code[] = [];
    const talkWatch = new AbortController();
    const eventsWatch = new AbortController();
    const talkStream = consume(
      a.watchTalk(
        { chatId },
        { signal: talkWatch.signal, onStatus: (s, e) => s === "reconnecting" && e !== undefined && resumedFrom.push(e.code) },
      ),
      talkWatch,
    );
    const feed = consume(b.watchEvents({}, { signal: eventsWatch.signal }), eventsWatch);
    try {
      const texts: string[] = [];
      const send = async (count: number, label: string) => {
        for (let i = 0; i < count; i++) {
          const text = `${label} ${i}`;
          await a.messages.sendMessage({ chatId, text });
          texts.push(text);
        }
      };
      const lastSeq = async () => Number((await a.talks.getTalk({ id: chatId })).talk?.lastSeq ?? 0n);
      const reached = async (what: string) => {
        const head = await lastSeq();
        await vi.waitFor(
          () => {
            expect(talkStream.failure, "WatchTalk failed").toBeUndefined();
            expect(feed.failure, "WatchEvents failed").toBeUndefined();
            expect(talkStream.events.at(-1)?.seq ?? 0, `${what}: WatchTalk`).toBe(head);
            expect(feed.events.filter((e) => e.chatId === chatId).at(-1)?.seq ?? 0, `${what}: WatchEvents`).toBe(head);
          },
          { timeout: 20_000, interval: 50 },
        );
        return head;
      };

      // WatchEvents starts from now: wait for its first response (a heartbeat) before sending.
      await vi.waitFor(() => expect(feed.responses).toBeGreaterThan(0), { timeout: 10_000 });
      await send(10, "before");
      await reached("before the kill");

      // SIGKILL mid-stream; a new process on the same port and database.
      await current?.kill();
      current = await spawnTalkhub(env);
      await send(10, "after kill");
      await reached("after the restart");
      expect(resumedFrom.length, "WatchTalk reconnected").toBeGreaterThan(0);

      // SIGTERM: the service ends its streams with UNAVAILABLE; start it again.
      const before = resumedFrom.length;
      await current?.stop();
      current = await spawnTalkhub(env);
      await send(5, "after stop");
      const head = await reached("after the second restart");
      expect(resumedFrom.slice(before), "errors WatchTalk resumed from after the SIGTERM").toContain(Code.Unavailable);

      const talkSeqs = talkStream.events.map((e) => e.seq);
      expect(talkSeqs, `WatchTalk: ${describeSeqs(talkSeqs, 1, head)}`).toEqual(range(1, head));
      const feedSeqs = feed.events.filter((e) => e.chatId === chatId).map((e) => e.seq);
      const feedFrom = startSeq + 1;
      expect(feedSeqs, `WatchEvents: ${describeSeqs(feedSeqs, feedFrom, head)}`).toEqual(range(feedFrom, head));
      // Every message sent, in the order sent, exactly once, on both streams (the joins' system
      // messages aside).
      const created = (events: readonly Seen[]) =>
        events.filter((e) => e.chatId === chatId && e.type === "message_created" && /^(before|after)/.test(e.text)).map((e) => e.text);
      expect(created(talkStream.events)).toEqual(texts);
      expect(created(feed.events)).toEqual(texts);
      // Resumed, and exactly: the client never had to drop a duplicate.
      for (const stats of [talkStream.stats(), feed.stats()]) {
        expect(stats.opens).toBeGreaterThanOrEqual(3);
        expect(stats.duplicatesDropped).toBe(0);
      }
    } finally {
      await Promise.all([talkStream.stop(), feed.stop()]);
    }
  }, 120_000);
});
