/**
 * WatchTalk and WatchEvents as resumable calls: what each remembers of the responses it hands
 * out, and how it reopens from there.
 */
import type { Client } from "@connectrpc/connect";
import type { TalkService, WatchEventsResponse, WatchTalkResponse } from "../../../gen/talk/v1/talk_service_pb.js";
import type { ResumableCall } from "./resumable-stream.js";

/** WatchTalk resumes after the last seq delivered; an event at or below it is a duplicate. */
export function watchTalkCall(
  talks: Client<typeof TalkService>,
  chatId: string,
  afterSeq: bigint,
): ResumableCall<WatchTalkResponse, bigint> {
  let position = afterSeq;
  return {
    open: (signal, headers, onHeader) => talks.watchTalk({ chatId, afterSeq: position }, { signal, headers, onHeader }),
    accept: (response) => {
      if (response.kind.case !== "event") return true;
      const seq = response.kind.value.seq;
      if (seq <= position) return false;
      position = seq;
      return true;
    },
    position: () => position,
  };
}

/**
 * WatchEvents resumes from the cursor of the last response (events and heartbeats carry one).
 * The cursor already delivers exactly what was missed; the last seq seen per talk is kept as
 * well, so that an event replayed all the same never reaches the consumer twice.
 */
export function watchEventsCall(talks: Client<typeof TalkService>, cursor: string): ResumableCall<WatchEventsResponse, string> {
  let position = cursor;
  const lastSeqs = new Map<string, bigint>();
  return {
    open: (signal, headers, onHeader) => talks.watchEvents({ cursor: position }, { signal, headers, onHeader }),
    accept: (response) => {
      if (response.cursor !== "") position = response.cursor;
      if (response.kind.case !== "event") return true;
      const { chatId, seq } = response.kind.value;
      const last = lastSeqs.get(chatId);
      if (last !== undefined && seq <= last) return false;
      lastSeqs.set(chatId, seq);
      return true;
    },
    position: () => position,
  };
}
