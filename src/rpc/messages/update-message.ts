import type { ServiceImpl } from "@connectrpc/connect";
import type { MessageService } from "../../../gen/talk/v1/message_service_pb.js";
import { updateMessage as updateMessageRule } from "../../domain/messages.js";
import { callerOf } from "../caller.js";
import type { RpcContext } from "../context.js";
import { messageToProto } from "../to-proto.js";

/** MessageService.UpdateMessage */
export function updateMessage(ctx: RpcContext): Partial<ServiceImpl<typeof MessageService>> {
  return {
    async updateMessage(req, context) {
      const message = await updateMessageRule(ctx.deps, callerOf(context), { id: req.id, text: req.text });
      return { message: messageToProto(message) };
    },
  };
}
