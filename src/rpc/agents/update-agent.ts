import type { ServiceImpl } from "@connectrpc/connect";
import type { AgentService } from "../../../gen/talk/v1/agent_service_pb.js";
import { updateAgent as updateAgentRule } from "../../domain/agents.js";
import { callerOf } from "../caller.js";
import type { RpcContext } from "../context.js";
import { agentToProto } from "../to-proto.js";

/** AgentService.UpdateAgent */
export function updateAgent(ctx: RpcContext): Partial<ServiceImpl<typeof AgentService>> {
  return {
    async updateAgent(req, context) {
      const agent = await updateAgentRule(ctx.deps, callerOf(context), { id: req.id, name: req.name, role: req.role });
      return { agent: agentToProto(agent) };
    },
  };
}
