import type { ServiceImpl } from "@connectrpc/connect";
import type { MessageService } from "../../gen/talk/v1/message_service_pb.js";
import { deleteMessage, getMessage, listMessages, sendMessage, updateMessage } from "../domain/messages.js";
import { addReaction, removeReaction } from "../domain/reactions.js";
import { callerOf } from "./caller.js";
import type { RpcContext } from "./context.js";
import { mediaFromProto, messageToProto } from "./to-proto.js";

/** MessageService: each method hands its request's fields to the domain and its answer to to-proto. */
export function messageService(ctx: RpcContext): ServiceImpl<typeof MessageService> {
  return {
    async sendMessage(req, context) {
      const message = await sendMessage(ctx.deps, callerOf(context), {
        chatId: req.chatId,
        type: req.type,
        text: req.text,
        parentId: req.parentId,
        medias: req.medias.map(mediaFromProto),
        clientMessageId: req.clientMessageId,
      });
      return { message: messageToProto(message) };
    },
    async getMessage(req, context) {
      return { message: messageToProto(await getMessage(ctx.deps, callerOf(context), req.id)) };
    },
    async listMessages(req, context) {
      const input = { chatId: req.chatId, parentId: req.parentId, pageSize: req.pageSize, pageToken: req.pageToken };
      const page = await listMessages(ctx.deps, callerOf(context), input);
      return { result: page.items.map(messageToProto), nextPageToken: page.nextPageToken };
    },
    async updateMessage(req, context) {
      return { message: messageToProto(await updateMessage(ctx.deps, callerOf(context), { id: req.id, text: req.text })) };
    },
    async deleteMessage(req, context) {
      return { message: messageToProto(await deleteMessage(ctx.deps, callerOf(context), req.id)) };
    },
    async addReaction(req, context) {
      const message = await addReaction(ctx.deps, callerOf(context), { messageId: req.messageId, emoji: req.emoji });
      return { message: messageToProto(message) };
    },
    async removeReaction(req, context) {
      const message = await removeReaction(ctx.deps, callerOf(context), { messageId: req.messageId, emoji: req.emoji });
      return { message: messageToProto(message) };
    },
  };
}
