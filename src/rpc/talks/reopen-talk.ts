import type { ServiceImpl } from "@connectrpc/connect";
import type { TalkService } from "../../../gen/talk/v1/talk_service_pb.js";
import { reopenTalk as reopenTalkRule } from "../../domain/talks.js";
import { callerOf } from "../caller.js";
import type { RpcContext } from "../context.js";
import { talkToProto } from "../to-proto.js";

/** TalkService.ReopenTalk */
export function reopenTalk(ctx: RpcContext): Partial<ServiceImpl<typeof TalkService>> {
  return {
    async reopenTalk(req, context) {
      const talk = await reopenTalkRule(ctx.deps, callerOf(context), req.id);
      return { talk: talkToProto(talk) };
    },
  };
}
