import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { HeartbeatSchema } from "../../../gen/talk/v1/events_pb.js";
import type { TalkService } from "../../../gen/talk/v1/talk_service_pb.js";
import { watchTalk as watchTalkRule } from "../../domain/watch.js";
import { callerOf } from "../caller.js";
import type { RpcContext } from "../context.js";
import { eventToProto } from "../to-proto.js";

/** TalkService.WatchTalk */
export function watchTalk(ctx: RpcContext): Partial<ServiceImpl<typeof TalkService>> {
  return {
    async *watchTalk(req, context) {
      const items = watchTalkRule(ctx.deps, ctx.watch, callerOf(context), { chatId: req.chatId, afterSeq: Number(req.afterSeq) }, context.signal);
      for await (const item of items) {
        yield item.kind === "event"
          ? { kind: { case: "event", value: eventToProto(item.event) } }
          : { kind: { case: "heartbeat", value: create(HeartbeatSchema, { lastSeq: BigInt(item.lastSeq), tmCreate: timestampNow() }) } };
      }
    },
  };
}
