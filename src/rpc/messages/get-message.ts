import type { ServiceImpl } from "@connectrpc/connect";
import type { MessageService } from "../../../gen/talk/v1/message_service_pb.js";
import { getMessage as getMessageRule } from "../../domain/messages.js";
import { callerOf } from "../caller.js";
import type { RpcContext } from "../context.js";
import { messageToProto } from "../to-proto.js";

/** MessageService.GetMessage */
export function getMessage(ctx: RpcContext): Partial<ServiceImpl<typeof MessageService>> {
  return {
    async getMessage(req, context) {
      const message = await getMessageRule(ctx.deps, callerOf(context), req.id);
      return { message: messageToProto(message) };
    },
  };
}
