import type { ServiceImpl } from "@connectrpc/connect";
import type { TalkService } from "../../../gen/talk/v1/talk_service_pb.js";
import { listParticipants as listParticipantsRule } from "../../domain/participants.js";
import { callerOf } from "../caller.js";
import type { RpcContext } from "../context.js";
import { participantToProto } from "../to-proto.js";

/** TalkService.ListParticipants */
export function listParticipants(ctx: RpcContext): Partial<ServiceImpl<typeof TalkService>> {
  return {
    async listParticipants(req, context) {
      const participants = await listParticipantsRule(ctx.deps, callerOf(context), req.chatId);
      return { result: participants.map(participantToProto) };
    },
  };
}
