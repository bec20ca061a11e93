import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { HeartbeatSchema } from "../../../gen/talk/v1/events_pb.js";
import type { TalkService } from "../../../gen/talk/v1/talk_service_pb.js";
import { watchEvents as watchEventsRule } from "../../live/watch.js";
import { callerOf } from "../caller.js";
import type { RpcContext } from "../context.js";
import { eventToProto } from "../to-proto.js";

/** TalkService.WatchEvents */
export function watchEvents(ctx: RpcContext): Partial<ServiceImpl<typeof TalkService>> {
  return {
    async *watchEvents(req, context) {
      const items = watchEventsRule(ctx.deps, ctx.watch, callerOf(context), { cursor: req.cursor }, context.signal);
      for await (const item of items) {
        yield item.kind === "event"
          ? { kind: { case: "event", value: eventToProto(item.event) }, cursor: item.cursor }
          : { kind: { case: "heartbeat", value: create(HeartbeatSchema, { tmCreate: timestampNow() }) }, cursor: item.cursor };
      }
    },
  };
}
