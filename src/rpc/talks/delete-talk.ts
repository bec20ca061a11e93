import type { ServiceImpl } from "@connectrpc/connect";
import type { TalkService } from "../../../gen/talk/v1/talk_service_pb.js";
import { deleteTalk as deleteTalkRule } from "../../domain/talks.js";
import { callerOf } from "../caller.js";
import type { RpcContext } from "../context.js";
import { talkToProto } from "../to-proto.js";

/** TalkService.DeleteTalk */
export function deleteTalk(ctx: RpcContext): Partial<ServiceImpl<typeof TalkService>> {
  return {
    async deleteTalk(req, context) {
      const talk = await deleteTalkRule(ctx.deps, callerOf(context), req.id);
      return { talk: talkToProto(talk) };
    },
  };
}
