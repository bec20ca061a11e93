import type { ServiceImpl } from "@connectrpc/connect";
import type { AgentService } from "../../../gen/talk/v1/agent_service_pb.js";
import { listAgents as listAgentsRule } from "../../domain/agents.js";
import { callerOf } from "../caller.js";
import type { RpcContext } from "../context.js";
import { agentToProto } from "../to-proto.js";

/** AgentService.ListAgents */
export function listAgents(ctx: RpcContext): Partial<ServiceImpl<typeof AgentService>> {
  return {
    async listAgents(req, context) {
      const page = await listAgentsRule(ctx.deps, callerOf(context), { pageSize: req.pageSize, pageToken: req.pageToken });
      return { result: page.items.map(agentToProto), nextPageToken: page.nextPageToken };
    },
  };
}
