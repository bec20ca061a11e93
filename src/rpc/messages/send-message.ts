import type { ServiceImpl } from "@connectrpc/connect";
import type { MessageService } from "../../../gen/talk/v1/message_service_pb.js";
import { sendMessage as sendMessageRule } from "../../domain/messages.js";
import { callerOf } from "../caller.js";
import type { RpcContext } from "../context.js";
import { mediaFromProto, messageToProto } from "../to-proto.js";

/** MessageService.SendMessage */
export function sendMessage(ctx: RpcContext): Partial<ServiceImpl<typeof MessageService>> {
  return {
    async sendMessage(req, context) {
      const message = await sendMessageRule(ctx.deps, callerOf(context), {
        chatId: req.chatId,
        type: req.type,
        text: req.text,
        parentId: req.parentId,
        medias: req.medias.map(mediaFromProto),
        clientMessageId: req.clientMessageId,
      });
      return { message: messageToProto(message) };
    },
  };
}
