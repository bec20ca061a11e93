import type { ConnectRouter } from "@connectrpc/connect";
import { AgentService } from "../../gen/talk/v1/agent_service_pb.js";
import { MessageService } from "../../gen/talk/v1/message_service_pb.js";
import { TalkService } from "../../gen/talk/v1/talk_service_pb.js";
import type { RpcContext } from "./context.js";
import { createAgent } from "./agents/create-agent.js";
import { getAgent } from "./agents/get-agent.js";
import { listAgents } from "./agents/list-agents.js";
import { updateAgent } from "./agents/update-agent.js";
import { deleteAgent } from "./agents/delete-agent.js";
import { sendMessage } from "./messages/send-message.js";
import { getMessage } from "./messages/get-message.js";
import { listMessages } from "./messages/list-messages.js";
import { updateMessage } from "./messages/update-message.js";
import { deleteMessage } from "./messages/delete-message.js";
import { addReaction } from "./messages/add-reaction.js";
import { removeReaction } from "./messages/remove-reaction.js";
import { createTalk } from "./talks/create-talk.js";
import { getTalk } from "./talks/get-talk.js";
import { listTalks } from "./talks/list-talks.js";
import { updateTalk } from "./talks/update-talk.js";
import { watchEvents } from "./talks/watch-events.js";
import { watchTalk } from "./talks/watch-talk.js";
import { closeTalk } from "./talks/close-talk.js";
import { reopenTalk } from "./talks/reopen-talk.js";
import { deleteTalk } from "./talks/delete-talk.js";
import { addParticipant } from "./talks/add-participant.js";
import { removeParticipant } from "./talks/remove-participant.js";
import { listParticipants } from "./talks/list-participants.js";

/** Registers every service on a router: each RPC is one file under talks/, messages/ and agents/. */
export function routes(ctx: RpcContext): (router: ConnectRouter) => void {
  return (router) => {
    router.service(TalkService, {
      ...createTalk(ctx),
      ...getTalk(ctx),
      ...listTalks(ctx),
      ...updateTalk(ctx),
      ...closeTalk(ctx),
      ...reopenTalk(ctx),
      ...deleteTalk(ctx),
      ...addParticipant(ctx),
      ...removeParticipant(ctx),
      ...listParticipants(ctx),
      ...watchTalk(ctx),
      ...watchEvents(ctx),
    });
    router.service(MessageService, {
      ...sendMessage(ctx),
      ...getMessage(ctx),
      ...listMessages(ctx),
      ...updateMessage(ctx),
      ...deleteMessage(ctx),
      ...addReaction(ctx),
      ...removeReaction(ctx),
    });
    router.service(AgentService, {
      ...createAgent(ctx),
      ...getAgent(ctx),
      ...listAgents(ctx),
      ...updateAgent(ctx),
      ...deleteAgent(ctx),
    });
  };
}
