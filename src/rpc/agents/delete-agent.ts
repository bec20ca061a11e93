import type { ServiceImpl } from "@connectrpc/connect";
import type { AgentService } from "../../../gen/talk/v1/agent_service_pb.js";
import { deleteAgent as deleteAgentRule } from "../../domain/agents.js";
import { callerOf } from "../caller.js";
import type { RpcContext } from "../context.js";
import { agentToProto } from "../to-proto.js";

/** AgentService.DeleteAgent */
export function deleteAgent(ctx: RpcContext): Partial<ServiceImpl<typeof AgentService>> {
  return {
    async deleteAgent(req, context) {
      const agent = await deleteAgentRule(ctx.deps, ctx.callers, callerOf(context), req.id);
      return { agent: agentToProto(agent) };
    },
  };
}
