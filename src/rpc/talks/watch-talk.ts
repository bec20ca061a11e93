import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { HeartbeatSchema } from "../../../gen/talk/v1/events_pb.js";
import { WatchTalkResponseSchema, type TalkService, type WatchTalkResponse } from "../../../gen/talk/v1/talk_service_pb.js";
import type { TalkEvent } from "../../domain/events.js";
import { watchTalk as watchTalkRule } from "../../live/watch.js";
import { callerOf } from "../caller.js";
import type { RpcContext } from "../context.js";
import { eventToProto } from "../to-proto.js";

/**
 * One response per event, shared by every watcher of the talk in this process: the gRPC path
 * encodes a shared message once (http/grpc-direct.ts).
 */
const responses = new WeakMap<TalkEvent, WatchTalkResponse>();

function eventResponse(event: TalkEvent): WatchTalkResponse {
  let response = responses.get(event);
  if (response === undefined) {
    response = create(WatchTalkResponseSchema, { kind: { case: "event", value: eventToProto(event) } });
    responses.set(event, response);
  }
  return response;
}

/** TalkService.WatchTalk */
export function watchTalk(ctx: RpcContext): Partial<ServiceImpl<typeof TalkService>> {
  return {
    async *watchTalk(req, context) {
      const items = watchTalkRule(ctx.deps, ctx.watch, callerOf(context), { chatId: req.chatId, afterSeq: Number(req.afterSeq) }, context.signal);
      for await (const item of items) {
        yield item.kind === "event"
          ? eventResponse(item.event)
          : { kind: { case: "heartbeat", value: create(HeartbeatSchema, { lastSeq: BigInt(item.lastSeq), tmCreate: timestampNow() }) } };
      }
    },
  };
}
