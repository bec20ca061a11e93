import type { ServiceImpl } from "@connectrpc/connect";
import type { TalkService } from "../../../gen/talk/v1/talk_service_pb.js";
import { listTalks as listTalksRule } from "../../domain/talks.js";
import { callerOf } from "../caller.js";
import type { RpcContext } from "../context.js";
import { talkToProto } from "../to-proto.js";

/** TalkService.ListTalks */
export function listTalks(ctx: RpcContext): Partial<ServiceImpl<typeof TalkService>> {
  return {
    async listTalks(req, context) {
      const page = await listTalksRule(ctx.deps, callerOf(context), { pageSize: req.pageSize, pageToken: req.pageToken });
      return { result: page.items.map(talkToProto), nextPageToken: page.nextPageToken };
    },
  };
}
