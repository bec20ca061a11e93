/** Typed clients of Talkhub's services over the Connect protocol, on the page's own origin. */
import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { AgentService } from "../../gen/talk/v1/agent_service_pb.js";
import { MessageService } from "../../gen/talk/v1/message_service_pb.js";
import { TalkService } from "../../gen/talk/v1/talk_service_pb.js";

export interface Api {
  readonly talks: Client<typeof TalkService>;
  readonly messages: Client<typeof MessageService>;
  readonly agents: Client<typeof AgentService>;
}

export function createApi(token: string, baseUrl = location.origin): Api {
  const bearer: Interceptor = (next) => (request) => {
    request.header.set("Authorization", `Bearer ${token}`);
    return next(request);
  };
  const transport = createConnectTransport({ baseUrl, useBinaryFormat: true, interceptors: [bearer] });
  return {
    talks: createClient(TalkService, transport),
    messages: createClient(MessageService, transport),
    agents: createClient(AgentService, transport),
  };
}

/** A short, human message for a failed call. */
export function describeError(error: unknown): string {
  const e = ConnectError.from(error);
  if (e.code === Code.Unauthenticated) return "The service did not accept the token (signed out?).";
  return e.rawMessage || Code[e.code] || "request failed";
}

export { Code, ConnectError };
