import type { ServiceImpl } from "@connectrpc/connect";
import type { TalkService } from "../../../gen/talk/v1/talk_service_pb.js";
import { addParticipant as addParticipantRule } from "../../domain/participants.js";
import { callerOf } from "../caller.js";
import type { RpcContext } from "../context.js";
import { participantToProto } from "../to-proto.js";

/** TalkService.AddParticipant */
export function addParticipant(ctx: RpcContext): Partial<ServiceImpl<typeof TalkService>> {
  return {
    async addParticipant(req, context) {
      const participant = await addParticipantRule(ctx.deps, callerOf(context), { chatId: req.chatId, agentId: req.agentId, ownerType: req.ownerType, ownerId: req.ownerId });
      return { participant: participantToProto(participant) };
    },
  };
}
