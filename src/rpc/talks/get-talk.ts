import type { ServiceImpl } from "@connectrpc/connect";
import type { TalkService } from "../../../gen/talk/v1/talk_service_pb.js";
import { getTalk as getTalkRule } from "../../domain/talks.js";
import { callerOf } from "../caller.js";
import type { RpcContext } from "../context.js";
import { talkToProto } from "../to-proto.js";

/** TalkService.GetTalk */
export function getTalk(ctx: RpcContext): Partial<ServiceImpl<typeof TalkService>> {
  return {
    async getTalk(req, context) {
      const talk = await getTalkRule(ctx.deps, callerOf(context), req.id);
      return { talk: talkToProto(talk) };
    },
  };
}
