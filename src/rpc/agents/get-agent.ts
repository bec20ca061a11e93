import type { ServiceImpl } from "@connectrpc/connect";
import type { AgentService } from "../../../gen/talk/v1/agent_service_pb.js";
import { getAgent as getAgentRule } from "../../domain/agents.js";
import { callerOf } from "../caller.js";
import type { RpcContext } from "../context.js";
import { agentToProto } from "../to-proto.js";

/** AgentService.GetAgent */
export function getAgent(ctx: RpcContext): Partial<ServiceImpl<typeof AgentService>> {
  return {
    async getAgent(req, context) {
      const agent = await getAgentRule(ctx.deps, callerOf(context), req.id);
      return { agent: agentToProto(agent) };
    },
  };
}
