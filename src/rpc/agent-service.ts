import type { ServiceImpl } from "@connectrpc/connect";
import type { AgentService } from "../../gen/talk/v1/agent_service_pb.js";
import { createAgent, deleteAgent, getAgent, listAgents, updateAgent } from "../domain/agents.js";
import { callerOf } from "./caller.js";
import type { RpcContext } from "./context.js";
import { agentToProto } from "./to-proto.js";

/** AgentService: each method hands its request's fields to the domain and its answer to to-proto. */
export function agentService(ctx: RpcContext): ServiceImpl<typeof AgentService> {
  return {
    async createAgent(req, context) {
      return { agent: agentToProto(await createAgent(ctx.deps, callerOf(context), { id: req.id, name: req.name, role: req.role })) };
    },
    async getAgent(req, context) {
      return { agent: agentToProto(await getAgent(ctx.deps, callerOf(context), req.id)) };
    },
    async listAgents(req, context) {
      const page = await listAgents(ctx.deps, callerOf(context), { pageSize: req.pageSize, pageToken: req.pageToken });
      return { result: page.items.map(agentToProto), nextPageToken: page.nextPageToken };
    },
    async updateAgent(req, context) {
      return { agent: agentToProto(await updateAgent(ctx.deps, callerOf(context), { id: req.id, name: req.name, role: req.role })) };
    },
    async deleteAgent(req, context) {
      // Deleting an agent also drops it from the caller directory.
      return { agent: agentToProto(await deleteAgent(ctx.deps, ctx.callers, callerOf(context), req.id)) };
    },
  };
}
