import type { ServiceImpl } from "@connectrpc/connect";
import type { MessageService } from "../../../gen/talk/v1/message_service_pb.js";
import { deleteMessage as deleteMessageRule } from "../../domain/messages.js";
import { callerOf } from "../caller.js";
import type { RpcContext } from "../context.js";
import { messageToProto } from "../to-proto.js";

/** MessageService.DeleteMessage */
export function deleteMessage(ctx: RpcContext): Partial<ServiceImpl<typeof MessageService>> {
  return {
    async deleteMessage(req, context) {
      const message = await deleteMessageRule(ctx.deps, callerOf(context), req.id);
      return { message: messageToProto(message) };
    },
  };
}
