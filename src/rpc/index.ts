import { createServiceImplSpec, type ConnectRouter, type ServiceImplSpec } from "@connectrpc/connect";
import { AgentService } from "../../gen/talk/v1/agent_service_pb.js";
import { MessageService } from "../../gen/talk/v1/message_service_pb.js";
import { TalkService } from "../../gen/talk/v1/talk_service_pb.js";
import { agentService } from "./agent-service.js";
import type { RpcContext } from "./context.js";
import { messageService } from "./message-service.js";
import { talkService } from "./talk-service.js";

/**
 * The API's services with their handlers, one file each. Every edge serves these same specs:
 * gRPC directly, connect's router (gRPC, gRPC-Web, Connect), REST and the WebSocket.
 */
export function apiServices(ctx: RpcContext): ServiceImplSpec[] {
  return [
    createServiceImplSpec<typeof TalkService>(TalkService, talkService(ctx)),
    createServiceImplSpec<typeof MessageService>(MessageService, messageService(ctx)),
    createServiceImplSpec<typeof AgentService>(AgentService, agentService(ctx)),
  ];
}

/** Registers services on a router: each method as `router.service` would (connect makes the same handlers). */
export function routesOf(services: readonly ServiceImplSpec[]): (router: ConnectRouter) => void {
  return (router) => {
    for (const { methods } of services) {
      for (const spec of Object.values(methods)) router.rpc(spec.method, spec.impl);
    }
  };
}
