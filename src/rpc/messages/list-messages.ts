import type { ServiceImpl } from "@connectrpc/connect";
import type { MessageService } from "../../../gen/talk/v1/message_service_pb.js";
import { listMessages as listMessagesRule } from "../../domain/messages.js";
import { callerOf } from "../caller.js";
import type { RpcContext } from "../context.js";
import { messageToProto } from "../to-proto.js";

/** MessageService.ListMessages */
export function listMessages(ctx: RpcContext): Partial<ServiceImpl<typeof MessageService>> {
  return {
    async listMessages(req, context) {
      const page = await listMessagesRule(ctx.deps, callerOf(context), { chatId: req.chatId, parentId: req.parentId, pageSize: req.pageSize, pageToken: req.pageToken });
      return { result: page.items.map(messageToProto), nextPageToken: page.nextPageToken };
    },
  };
}
