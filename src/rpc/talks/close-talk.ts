import type { ServiceImpl } from "@connectrpc/connect";
import type { TalkService } from "../../../gen/talk/v1/talk_service_pb.js";
import { closeTalk as closeTalkRule } from "../../domain/talks.js";
import { callerOf } from "../caller.js";
import type { RpcContext } from "../context.js";
import { talkToProto } from "../to-proto.js";

/** TalkService.CloseTalk */
export function closeTalk(ctx: RpcContext): Partial<ServiceImpl<typeof TalkService>> {
  return {
    async closeTalk(req, context) {
      const talk = await closeTalkRule(ctx.deps, callerOf(context), req.id);
      return { talk: talkToProto(talk) };
    },
  };
}
