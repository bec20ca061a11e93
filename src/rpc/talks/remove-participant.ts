import type { ServiceImpl } from "@connectrpc/connect";
import type { TalkService } from "../../../gen/talk/v1/talk_service_pb.js";
import { removeParticipant as removeParticipantRule } from "../../domain/participants.js";
import { callerOf } from "../caller.js";
import type { RpcContext } from "../context.js";
import { participantToProto } from "../to-proto.js";

/** TalkService.RemoveParticipant */
export function removeParticipant(ctx: RpcContext): Partial<ServiceImpl<typeof TalkService>> {
  return {
    async removeParticipant(req, context) {
      const participant = await removeParticipantRule(ctx.deps, callerOf(context), { chatId: req.chatId, participantId: req.participantId });
      return { participant: participantToProto(participant) };
    },
  };
}
