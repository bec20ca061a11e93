import type { ServiceImpl } from "@connectrpc/connect";
import type { TalkService } from "../../../gen/talk/v1/talk_service_pb.js";
import { updateTalk as updateTalkRule } from "../../domain/talks.js";
import { callerOf } from "../caller.js";
import type { RpcContext } from "../context.js";
import { talkToProto } from "../to-proto.js";

/** TalkService.UpdateTalk */
export function updateTalk(ctx: RpcContext): Partial<ServiceImpl<typeof TalkService>> {
  return {
    async updateTalk(req, context) {
      const talk = await updateTalkRule(ctx.deps, callerOf(context), { id: req.id, name: req.name, detail: req.detail });
      return { talk: talkToProto(talk) };
    },
  };
}
