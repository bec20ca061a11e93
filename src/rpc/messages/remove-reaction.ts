import type { ServiceImpl } from "@connectrpc/connect";
import type { MessageService } from "../../../gen/talk/v1/message_service_pb.js";
import { removeReaction as removeReactionRule } from "../../domain/reactions.js";
import { callerOf } from "../caller.js";
import type { RpcContext } from "../context.js";
import { messageToProto } from "../to-proto.js";

/** MessageService.RemoveReaction */
export function removeReaction(ctx: RpcContext): Partial<ServiceImpl<typeof MessageService>> {
  return {
    async removeReaction(req, context) {
      const message = await removeReactionRule(ctx.deps, callerOf(context), { messageId: req.messageId, emoji: req.emoji });
      return { message: messageToProto(message) };
    },
  };
}
