/**
 * A watcher child process (forked by bench/fanout.ts with IPC, serialization "advanced"): it
 * holds many subscriptions of one kind (gRPC WatchTalk streams over the lean transport or over a
 * plain @grpc/grpc-js client, WebSocket subscribers, or NATS core subscriptions) and records, per
 * subscription, which bench messages arrived and when.
 * A bench message's text is "b:<run>:<n>:<scheduled send time, epoch ms>", so latency is computed
 * here, from when the message was due to be sent (a late sender does not hide its delay).
 */
import { connect as natsConnect, type NatsConnection } from "@nats-io/transport-node";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { setMaxListeners } from "node:events";
import { status } from "@grpc/grpc-js";
import WebSocket from "ws";
import { TalkService } from "../gen/talk/v1/talk_service_pb.js";
import { grpcJsClients, watchTalk, type WatchTalkJson } from "./grpc-js-client.js";
import { createLeanTransport } from "./lean-transport.js";
import { nowAbs, Samples } from "./stats.js";

export type OpenCommand = {
  readonly op: "open";
  readonly kind: "grpc" | "grpc-js" | "ws" | "nats";
  readonly url: string;
  readonly token: string;
  readonly agentId: string;
  readonly chatId: string;
  readonly afterSeq: number;
  readonly subject: string;
  readonly count: number;
  /** Subscriptions per connection. */
  readonly perConnection: number;
  /**
   * gRPC over many talks: subscription s watches talk s mod index.length (instead of chatId),
   * whose message n are those with n mod `of` equal to its index.
   */
  readonly spread?: {
    readonly of: number;
    readonly index: readonly number[];
    readonly chatIds: readonly string[];
    readonly afterSeqs: readonly number[];
  };
};
export type Command =
  | OpenCommand
  | { readonly op: "reset"; readonly run: string; readonly maxN: number }
  | { readonly op: "collect"; readonly acked: Uint8Array; readonly idleMs: number; readonly capMs: number }
  | { readonly op: "ready"; readonly capMs: number }
  | { readonly op: "close" };

export interface CollectReply {
  readonly latencies: Float64Array;
  /** Acknowledged messages that a subscription which opened never received. */
  readonly lost: number;
  /** Subscriptions refused before they opened (they are not counted in lost). */
  readonly refused: number;
  readonly duplicated: number;
  readonly delivered: number;
  /** Acknowledged messages owed to the subscriptions that opened. */
  readonly expected: number;
  readonly firstAt: number;
  readonly lastAt: number;
  readonly streamErrors: number;
  /** Streams cut off for lagging and resumed from their last seq. */
  readonly resumes: number;
  readonly errorSamples: string[];
}

let run = "";
let maxN = 0;
let latencies = new Samples();
let seen: Uint8Array[] = [];
let counts: number[] = [];
/** Per subscription: the index of its talk; it is owed message n when n mod talkCount is that. */
let talkOf: number[] = [];
let talkCount = 1;
let duplicated = 0;
let delivered = 0;
let firstAt = Infinity;
let lastAt = 0;
let streamErrors = 0;
let resumes = 0;
/** Per subscription: 0 pending, 1 opened (its first response or ack arrived), 2 refused before that. */
let state: Uint8Array = new Uint8Array(0);
let openedCount = 0;
let refusedCount = 0;
function markReady(index: number): void {
  if (state[index] === 0) {
    state[index] = 1;
    openedCount++;
  }
}
/** An error before the first response: the subscription never opened. */
function markRefused(index: number): void {
  if (state[index] === 0) {
    state[index] = 2;
    refusedCount++;
  }
}
const errorSamples: string[] = [];
const closers: (() => void | Promise<void>)[] = [];

function record(index: number, text: string): void {
  const at = nowAbs();
  markReady(index);
  const parts = text.split(":");
  if (parts[0] !== "b" || parts[1] !== run) return;
  const n = Number(parts[2]);
  const sent = Number(parts[3]);
  if (!(n >= 0 && n < maxN)) return;
  const bits = seen[index]!;
  if (bits[n] === 1) {
    duplicated++;
    return;
  }
  bits[n] = 1;
  counts[index]!++;
  delivered++;
  latencies.push(at - sent);
  if (at < firstAt) firstAt = at;
  if (at > lastAt) lastAt = at;
}

function streamError(error: unknown): void {
  streamErrors++;
  if (errorSamples.length < 5) errorSamples.push(String(error).slice(0, 300));
}

async function openGrpc(command: OpenCommand, base: number): Promise<void> {
  const connections = Math.ceil(command.count / command.perConnection);
  for (let c = 0; c < connections; c++) {
    const transport = createLeanTransport(command.url, { authorization: `Bearer ${command.token}` });
    const client = createClient(TalkService, transport);
    const abort = new AbortController();
    setMaxListeners(0, abort.signal);
    closers.push(() => {
      abort.abort();
      transport.close();
    });
    for (let s = c * command.perConnection; s < Math.min(command.count, (c + 1) * command.perConnection); s++) {
      const index = base + s;
      const k = command.spread === undefined ? -1 : s % command.spread.index.length;
      const chatId = k < 0 ? command.chatId : command.spread!.chatIds[k]!;
      // The server sends headers with the first response, so a stream counts as ready when it
      // gets its first event: the parent sends a probe message after opening (see "ready").
      // WatchTalk replays from after_seq, so a stream that subscribes late still misses nothing.
      void (async () => {
        // Like a client: a stream cut off for lagging (RESOURCE_EXHAUSTED) resumes after the
        // last seq it received; "lost" then counts what never arrived at all.
        let afterSeq = BigInt(k < 0 ? command.afterSeq : command.spread!.afterSeqs[k]!);
        for (;;) {
          try {
            const stream = client.watchTalk({ chatId, afterSeq }, { signal: abort.signal });
            for await (const response of stream) {
              markReady(index);
              if (response.kind.case !== "event") continue;
              afterSeq = response.kind.value.seq;
              const payload = response.kind.value.payload;
              if (payload.case === "messageCreated") record(index, payload.value.text);
            }
            return;
          } catch (error) {
            if (abort.signal.aborted) return;
            if (ConnectError.from(error).code === Code.ResourceExhausted) {
              resumes++;
              continue;
            }
            streamError(error);
            markRefused(index);
            return;
          }
        }
      })();
    }
  }
}

/** WatchTalk over one plain grpc-js client (one HTTP/2 connection) for all of this process's streams. */
function openGrpcJs(command: OpenCommand, base: number): void {
  const clients = grpcJsClients(command.url, command.token);
  let closing = false;
  closers.push(() => {
    closing = true;
    clients.close();
  });
  for (let s = 0; s < command.count; s++) {
    const index = base + s;
    // As in openGrpc: ready at the first response; cut off for lagging, resume after the last seq.
    const watch = (afterSeq: string) => {
      const call = watchTalk(clients.talks, command.chatId, afterSeq, clients.metadata);
      closers.push(() => call.cancel());
      call.on("data", (response: WatchTalkJson) => {
        markReady(index);
        if (response.event === undefined) return;
        afterSeq = response.event.seq;
        if (response.event.message_created !== undefined) record(index, response.event.message_created.text);
      });
      call.on("error", (error: { code?: number }) => {
        if (closing) return;
        if (error.code === status.RESOURCE_EXHAUSTED) {
          resumes++;
          watch(afterSeq);
          return;
        }
        streamError(error);
        markRefused(index);
      });
    };
    watch(String(command.afterSeq));
  }
}

async function openWs(command: OpenCommand, base: number): Promise<void> {
  const wsUrl = `${command.url.replace(/^http/, "ws")}/v1.0/ws?token=${encodeURIComponent(command.token)}`;
  const topic = `agent_id:${command.agentId}:talk_chat:${command.chatId}`;
  const opened: Promise<void>[] = [];
  for (let s = 0; s < command.count; s++) {
    const index = base + s;
    opened.push(
      new Promise<void>((resolve) => {
        const socket = new WebSocket(wsUrl, { perMessageDeflate: false });
        closers.push(() => socket.terminate());
        socket.on("open", () => socket.send(JSON.stringify({ type: "subscribe", topics: [topic] })));
        socket.on("message", (data) => {
          const frame = JSON.parse(data.toString()) as { type?: string; message_created?: { text?: string }; message?: string };
          if (frame.type === "ack") {
            markReady(index);
            return resolve();
          }
          if (frame.type === "error") {
            streamError(frame.message);
            markRefused(index);
            return resolve();
          }
          const text = frame.message_created?.text;
          if (text !== undefined) record(index, text);
        });
        socket.on("error", (error) => {
          streamError(error);
          markRefused(index);
          resolve();
        });
      }),
    );
    // Don't open a thousand TCP connections in one tick.
    if (s % 100 === 99) await Promise.all(opened.slice(-100));
  }
  await Promise.all(opened);
}

async function openNats(command: OpenCommand, base: number): Promise<void> {
  const connections = Math.ceil(command.count / command.perConnection);
  for (let c = 0; c < connections; c++) {
    const nc: NatsConnection = await natsConnect({ servers: command.url, name: "talkhub-bench-watcher" });
    closers.push(() => nc.close());
    for (let s = c * command.perConnection; s < Math.min(command.count, (c + 1) * command.perConnection); s++) {
      const index = base + s;
      nc.subscribe(command.subject, { callback: (error, msg) => (error ? streamError(error) : record(index, msg.string())) });
    }
    await nc.flush();
  }
}

process.on("message", (command: Command) => {
  void (async () => {
    switch (command.op) {
      case "open": {
        const base = seen.length;
        talkCount = command.spread?.of ?? 1;
        for (let i = 0; i < command.count; i++) {
          seen.push(new Uint8Array(maxN));
          counts.push(0);
          talkOf.push(command.spread === undefined ? 0 : command.spread.index[i % command.spread.index.length]!);
        }
        const grown = new Uint8Array(seen.length);
        grown.set(state);
        state = grown;
        if (command.kind === "nats") for (let i = base; i < seen.length; i++) markReady(i);
        const start = nowAbs();
        if (command.kind === "grpc") await openGrpc(command, base);
        else if (command.kind === "grpc-js") openGrpcJs(command, base);
        else if (command.kind === "ws") await openWs(command, base);
        else await openNats(command, base);
        process.send!({ op: "opened", ms: nowAbs() - start, streamErrors });
        break;
      }
      case "ready": {
        const start = nowAbs();
        while (openedCount + refusedCount < seen.length && nowAbs() - start < command.capMs) await new Promise((r) => setTimeout(r, 10));
        process.send!({ op: "ready", opened: openedCount, refused: refusedCount, total: seen.length });
        break;
      }
      case "reset": {
        run = command.run;
        maxN = command.maxN;
        latencies = new Samples();
        seen = seen.map(() => new Uint8Array(maxN));
        counts = counts.map(() => 0);
        duplicated = 0;
        delivered = 0;
        firstAt = Infinity;
        lastAt = 0;
        process.send!({ op: "reset" });
        break;
      }
      case "collect": {
        // Acknowledged messages by talk index: what each subscription of that talk is owed.
        const owed = new Array<number>(talkCount).fill(0);
        for (let n = 0; n < command.acked.length; n++) if (command.acked[n] === 1) owed[n % talkCount]!++;
        let want = 0;
        for (const t of talkOf) want += owed[t]!;
        const start = nowAbs();
        let last = delivered;
        let lastChange = start;
        // Wait until every subscription has every acknowledged message, or nothing arrives for
        // idleMs, or capMs pass.
        while (delivered < want && nowAbs() - start < command.capMs) {
          await new Promise((r) => setTimeout(r, 20));
          if (delivered !== last) {
            last = delivered;
            lastChange = nowAbs();
          } else if (nowAbs() - lastChange > command.idleMs) break;
        }
        let lost = 0;
        let expected = 0;
        for (const [index, bits] of seen.entries()) {
          if (state[index] === 2) continue;
          expected += owed[talkOf[index]!]!;
          for (let n = talkOf[index]!; n < command.acked.length; n += talkCount) if (command.acked[n] === 1 && bits[n] !== 1) lost++;
        }
        const reply: CollectReply = {
          latencies: Float64Array.from(latencies.values()),
          lost,
          refused: refusedCount,
          duplicated,
          delivered,
          expected,
          firstAt,
          lastAt,
          streamErrors,
          resumes,
          errorSamples,
        };
        process.send!({ op: "collected", reply });
        break;
      }
      case "close": {
        for (const close of closers.splice(0)) await close();
        seen = [];
        counts = [];
        talkOf = [];
        talkCount = 1;
        state = new Uint8Array(0);
        openedCount = 0;
        refusedCount = 0;
        streamErrors = 0;
        resumes = 0;
        errorSamples.length = 0;
        process.send!({ op: "closed" });
        break;
      }
    }
  })().catch((error: unknown) => {
    process.send!({ op: "error", error: String(error) });
  });
});
process.on("disconnect", () => process.exit(0));
process.send!({ op: "up" });
