/**
 * The client package's resumable streams against a scripted TalkService (createRouterTransport):
 * resume positions, duplicates dropped, terminal errors surfaced, token refresh, abort.
 */
import { create } from "@bufbuild/protobuf";
import { createRouterTransport, type HandlerContext } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import {
  Code,
  ConnectError,
  EventSchema,
  HeartbeatSchema,
  TalkService,
  backoffDelay,
  createTalkhubClient,
  type StreamStatus,
  type TokenSource,
  type WatchEventsRequest as WatchEventsMessage,
  type WatchTalkRequest as WatchTalkMessage,
} from "../../clients/ts/src/index.js";

const event = (chatId: string, seq: number) => ({
  kind: { case: "event" as const, value: create(EventSchema, { chatId, seq: BigInt(seq), type: "message_created" }) },
});
const heartbeat = (lastSeq: number) => ({
  kind: { case: "heartbeat" as const, value: create(HeartbeatSchema, { lastSeq: BigInt(lastSeq) }) },
});

interface Opened {
  readonly afterSeq: bigint;
  readonly cursor: string;
  readonly authorization: string | null;
}

type Script = (opened: Opened, index: number) => AsyncIterable<ReturnType<typeof event> | ReturnType<typeof heartbeat>>;

/** A client whose TalkService.WatchTalk / WatchEvents follow `script`, one entry per open. */
function scripted(script: Script, token: TokenSource = "t0") {
  const opened: Opened[] = [];
  const record = (afterSeq: bigint, cursor: string, context: HandlerContext) => {
    const entry = { afterSeq, cursor, authorization: context.requestHeader.get("authorization") };
    opened.push(entry);
    return script(entry, opened.length - 1);
  };
  const client = createTalkhubClient({
    baseUrl: "http://talkhub.test",
    token,
    watch: { backoff: { initialMs: 1, maxMs: 5 }, idleMs: 0 },
    transport: (interceptors) =>
      createRouterTransport(
        (router) =>
          router.service(TalkService, {
            watchTalk: (request: WatchTalkMessage, context) => record(request.afterSeq, "", context),
            watchEvents: async function* (request: WatchEventsMessage, context) {
              for await (const item of record(0n, request.cursor, context))
                yield { ...item, cursor: `c${item.kind.case === "event" ? item.kind.value.seq : "h"}` };
            },
          }),
        { transport: { interceptors } },
      ),
  });
  return { client, opened };
}

async function collect<T>(stream: AsyncIterable<T>, limit = 100): Promise<{ items: T[]; error: ConnectError | undefined }> {
  const items: T[] = [];
  try {
    for await (const item of stream) {
      items.push(item);
      if (items.length >= limit) break;
    }
    return { items, error: undefined };
  } catch (error) {
    return { items, error: ConnectError.from(error) };
  }
}

const seqsOf = (items: readonly { kind: { case: string | undefined; value?: unknown } }[]): number[] =>
  items.flatMap((item) => (item.kind.case === "event" ? [Number((item.kind.value as { seq: bigint }).seq)] : []));

describe("resumable WatchTalk", () => {
  it("reopens after a broken stream from the last seq delivered and drops what the consumer already has", async () => {
    const { client, opened } = scripted(async function* ({ afterSeq }, index) {
      if (index === 0) {
        yield event("a", 1);
        yield event("a", 2);
        throw new ConnectError("gone", Code.Unavailable);
      }
      if (index === 1) {
        // A server that replays one too many: the client drops seq 2.
        yield event("a", 2);
        yield event("a", 3);
        throw new ConnectError("lagging", Code.ResourceExhausted);
      }
      if (index === 2) return; // ends without an error: reconnect as well
      for (let seq = Number(afterSeq) + 1; seq <= 5; seq++) yield event("a", seq);
      throw new ConnectError("the talk is gone", Code.NotFound);
    });
    const statuses: StreamStatus[] = [];
    const stream = client.watchTalk({ chatId: "a" }, { onStatus: (s) => statuses.push(s) });
    const { items, error } = await collect(stream);
    expect(seqsOf(items)).toEqual([1, 2, 3, 4, 5]);
    expect(opened.map((o) => o.afterSeq)).toEqual([0n, 2n, 3n, 3n]);
    expect(error?.code).toBe(Code.NotFound);
    expect(stream.stats).toMatchObject({ opens: 4, duplicatesDropped: 1 });
    expect(stream.position).toBe(5n);
    expect(statuses[0]).toBe("connecting");
    expect(statuses).toContain("reconnecting");
    expect(statuses.at(-1)).toBe("stopped");
  });

  it.each([Code.PermissionDenied, Code.NotFound, Code.InvalidArgument, Code.OutOfRange])(
    "stops on code %s and surfaces it",
    async (code) => {
      const { client, opened } = scripted(async function* () {
        yield event("a", 8);
        throw new ConnectError("no", code);
      });
      const { items, error } = await collect(client.watchTalk({ chatId: "a", afterSeq: 7 }));
      expect(seqsOf(items)).toEqual([8]);
      expect(error?.code).toBe(code);
      expect(opened).toHaveLength(1);
    },
  );

  it("asks a token function for a refresh after UNAUTHENTICATED, and stops when the new token is refused too", async () => {
    const asked: boolean[] = [];
    let version = 0;
    const token = ({ refresh }: { refresh: boolean }) => {
      asked.push(refresh);
      if (refresh) version += 1;
      return `t${version}`;
    };
    const { client, opened } = scripted(async function* ({ authorization }, index) {
      if (index === 0) yield event("a", 1);
      if (index <= 1 || authorization === "Bearer t1") throw new ConnectError("expired", Code.Unauthenticated);
      yield event("a", 2);
    }, token);
    const { items, error } = await collect(client.watchTalk({ chatId: "a" }));
    expect(seqsOf(items)).toEqual([1]);
    expect(error?.code).toBe(Code.Unauthenticated);
    // Open 1 delivers then is refused -> refresh (t1); open 2 refused again -> stop.
    expect(opened.map((o) => o.authorization)).toEqual(["Bearer t0", "Bearer t1"]);
    expect(asked).toEqual([false, true]);
  });

  it("a refreshed token resumes the stream", async () => {
    let version = 0;
    const { client, opened } = scripted(
      async function* ({ authorization }, index) {
        if (index === 0) {
          yield event("a", 1);
          throw new ConnectError("expired", Code.Unauthenticated);
        }
        expect(authorization).toBe("Bearer t1");
        yield event("a", 2);
        throw new ConnectError("left", Code.PermissionDenied);
      },
      ({ refresh }) => `t${refresh ? ++version : version}`,
    );
    const { items, error } = await collect(client.watchTalk({ chatId: "a" }));
    expect(seqsOf(items)).toEqual([1, 2]);
    expect(error?.code).toBe(Code.PermissionDenied);
    expect(opened.map((o) => o.afterSeq)).toEqual([0n, 1n]);
  });

  it("a string token refused is terminal at once", async () => {
    const { client, opened } = scripted(async function* () {
      yield* [];
      throw new ConnectError("bad token", Code.Unauthenticated);
    });
    const { error } = await collect(client.watchTalk({ chatId: "a" }));
    expect(error?.code).toBe(Code.Unauthenticated);
    expect(opened).toHaveLength(1);
  });

  it("ends quietly when the signal aborts, and when the consumer stops iterating", async () => {
    const controller = new AbortController();
    const { client } = scripted(async function* (_, index) {
      if (index > 1) throw new Error("reopened after the abort");
      yield event("a", 1);
      await new Promise(() => undefined);
    });
    const statuses: StreamStatus[] = [];
    const stream = client.watchTalk({ chatId: "a" }, { signal: controller.signal, onStatus: (s) => statuses.push(s) });
    const seen: number[] = [];
    for await (const item of stream) {
      seen.push(...seqsOf([item]));
      controller.abort();
    }
    expect(seen).toEqual([1]);
    expect(stream.stats.opens).toBe(1);
    expect(statuses).not.toContain("stopped");
    const { items } = await collect(client.watchTalk({ chatId: "a" }), 1);
    expect(seqsOf(items)).toEqual([1]);
  });
});

describe("resumable WatchEvents", () => {
  it("reopens from the last cursor, heartbeats included, and never hands out a talk's seq twice", async () => {
    const { client, opened } = scripted(async function* (_, index) {
      if (index === 0) {
        yield heartbeat(0);
        yield event("a", 1);
        yield event("b", 1);
        throw new ConnectError("down", Code.Unavailable);
      }
      if (index === 1) {
        yield heartbeat(1);
        throw new ConnectError("down", Code.Unknown);
      }
      yield event("b", 1);
      yield event("a", 2);
      throw new ConnectError("bad cursor", Code.InvalidArgument);
    });
    const stream = client.watchEvents({ cursor: "start" });
    const { items, error } = await collect(stream);
    expect(
      items.filter((i) => i.kind.case === "event").map((i) => `${(i.kind.value as { chatId: string }).chatId}${seqsOf([i])[0]}`),
    ).toEqual(["a1", "b1", "a2"]);
    expect(opened.map((o) => o.cursor)).toEqual(["start", "c1", "ch"]);
    expect(stream.stats.duplicatesDropped).toBe(1);
    expect(error?.code).toBe(Code.InvalidArgument);
  });
});

describe("backoff", () => {
  it("doubles from the initial wait up to the cap, within ±25 %", () => {
    const mid = () => 0.5;
    expect([1, 2, 3, 4, 5, 6, 7].map((n) => backoffDelay(n, {}, mid))).toEqual([250, 500, 1000, 2000, 4000, 5000, 5000]);
    expect(backoffDelay(1, {}, () => 0)).toBe(188);
    expect(backoffDelay(1, {}, () => 1)).toBe(313);
  });
});
