import type { ServiceImpl } from "@connectrpc/connect";
import type { MessageService } from "../../../gen/talk/v1/message_service_pb.js";
import { addReaction as addReactionRule } from "../../domain/reactions.js";
import { callerOf } from "../caller.js";
import type { RpcContext } from "../context.js";
import { messageToProto } from "../to-proto.js";

/** MessageService.AddReaction */
export function addReaction(ctx: RpcContext): Partial<ServiceImpl<typeof MessageService>> {
  return {
    async addReaction(req, context) {
      const message = await addReactionRule(ctx.deps, callerOf(context), { messageId: req.messageId, emoji: req.emoji });
      return { message: messageToProto(message) };
    },
  };
}
