import type { ServiceImpl } from "@connectrpc/connect";
import type { AgentService } from "../../../gen/talk/v1/agent_service_pb.js";
import { createAgent as createAgentRule } from "../../domain/agents.js";
import { callerOf } from "../caller.js";
import type { RpcContext } from "../context.js";
import { agentToProto } from "../to-proto.js";

/** AgentService.CreateAgent */
export function createAgent(ctx: RpcContext): Partial<ServiceImpl<typeof AgentService>> {
  return {
    async createAgent(req, context) {
      const agent = await createAgentRule(ctx.deps, callerOf(context), { id: req.id, name: req.name, role: req.role });
      return { agent: agentToProto(agent) };
    },
  };
}
