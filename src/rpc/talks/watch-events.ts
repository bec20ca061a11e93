import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { HeartbeatSchema } from "../../../gen/talk/v1/events_pb.js";
import { WatchEventsResponseSchema, type TalkService } from "../../../gen/talk/v1/talk_service_pb.js";
import { LiveBody } from "../../live/live-body.js";
import { eventsWatch } from "../../live/watch.js";
import { callerOf } from "../caller.js";
import type { RpcContext } from "../context.js";
import { eventToProto } from "../to-proto.js";
import { feedEventFrame, feedHeartbeatFrame } from "./live-frames.js";

/** TalkService.WatchEvents: a live body; each frame is the event's shared bytes and the stream's cursor. */
export function watchEvents(ctx: RpcContext): Partial<ServiceImpl<typeof TalkService>> {
  return {
    watchEvents(req, context) {
      const produce = eventsWatch(ctx.deps, ctx.watch, callerOf(context), { cursor: req.cursor }, context.signal);
      return LiveBody.of(produce, {
        message: (item) =>
          create(
            WatchEventsResponseSchema,
            item.kind === "event"
              ? { kind: { case: "event", value: eventToProto(item.event) }, cursor: item.cursor }
              : { kind: { case: "heartbeat", value: create(HeartbeatSchema, { tmCreate: timestampNow() }) }, cursor: item.cursor },
          ),
        frame: (item) => (item.kind === "event" ? feedEventFrame(item.event, item.cursor) : feedHeartbeatFrame(item.cursor)),
      });
    },
  };
}
