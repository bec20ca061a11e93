import type { ServiceImpl } from "@connectrpc/connect";
import type { TalkService } from "../../../gen/talk/v1/talk_service_pb.js";
import { createTalk as createTalkRule } from "../../domain/talks.js";
import { callerOf } from "../caller.js";
import type { RpcContext } from "../context.js";
import { talkToProto } from "../to-proto.js";

/** TalkService.CreateTalk */
export function createTalk(ctx: RpcContext): Partial<ServiceImpl<typeof TalkService>> {
  return {
    async createTalk(req, context) {
      const talk = await createTalkRule(ctx.deps, callerOf(context), { type: req.type, name: req.name, detail: req.detail, participantIds: req.participantIds });
      return { talk: talkToProto(talk) };
    },
  };
}
