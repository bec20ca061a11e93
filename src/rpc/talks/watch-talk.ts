import type { ServiceImpl } from "@connectrpc/connect";
import type { TalkService } from "../../../gen/talk/v1/talk_service_pb.js";
import { LiveBody } from "../../live/live-body.js";
import { talkWatch } from "../../live/watch.js";
import { callerOf } from "../caller.js";
import type { RpcContext } from "../context.js";
import { talkEventFrame, talkEventMessage, talkHeartbeatFrame, talkHeartbeatMessage } from "./live-frames.js";

/** TalkService.WatchTalk: a live body, whose event frames are encoded once for all its watchers. */
export function watchTalk(ctx: RpcContext): Partial<ServiceImpl<typeof TalkService>> {
  return {
    watchTalk(req, context) {
      const produce = talkWatch(ctx.deps, ctx.watch, callerOf(context), { chatId: req.chatId, afterSeq: Number(req.afterSeq) }, context.signal);
      return LiveBody.of(produce, {
        message: (item) => (item.kind === "event" ? talkEventMessage(item.event) : talkHeartbeatMessage(item.lastSeq)),
        frame: (item) => (item.kind === "event" ? talkEventFrame(item.event) : talkHeartbeatFrame(item.lastSeq)),
      });
    },
  };
}
