import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { HeartbeatSchema } from "../../gen/talk/v1/events_pb.js";
import { WatchEventsResponseSchema, type TalkService } from "../../gen/talk/v1/talk_service_pb.js";
import { addParticipant, listParticipants, removeParticipant } from "../domain/participants.js";
import { closeTalk, createTalk, deleteTalk, getTalk, listTalks, reopenTalk, updateTalk } from "../domain/talks.js";
import { LiveBody } from "../live/live-body.js";
import { eventsWatch, talkWatch } from "../live/watch.js";
import { callerOf } from "./caller.js";
import type { RpcContext } from "./context.js";
import {
  feedEventFrame,
  feedHeartbeatFrame,
  talkEventFrame,
  talkEventMessage,
  talkHeartbeatFrame,
  talkHeartbeatMessage,
} from "./talks/live-frames.js";
import { eventToProto, participantToProto, talkToProto } from "./to-proto.js";

/**
 * TalkService: each method hands its request's fields to the domain and its answer to to-proto.
 * The two watches return a live body, whose frames talks/live-frames.ts encodes once per event
 * for every stream that sends it.
 */
export function talkService(ctx: RpcContext): ServiceImpl<typeof TalkService> {
  return {
    async createTalk(req, context) {
      const input = { type: req.type, name: req.name, detail: req.detail, participantIds: req.participantIds };
      return { talk: talkToProto(await createTalk(ctx.deps, callerOf(context), input)) };
    },
    async getTalk(req, context) {
      return { talk: talkToProto(await getTalk(ctx.deps, callerOf(context), req.id)) };
    },
    async listTalks(req, context) {
      const page = await listTalks(ctx.deps, callerOf(context), { pageSize: req.pageSize, pageToken: req.pageToken });
      return { result: page.items.map(talkToProto), nextPageToken: page.nextPageToken };
    },
    async updateTalk(req, context) {
      return { talk: talkToProto(await updateTalk(ctx.deps, callerOf(context), { id: req.id, name: req.name, detail: req.detail })) };
    },
    async closeTalk(req, context) {
      return { talk: talkToProto(await closeTalk(ctx.deps, callerOf(context), req.id)) };
    },
    async reopenTalk(req, context) {
      return { talk: talkToProto(await reopenTalk(ctx.deps, callerOf(context), req.id)) };
    },
    async deleteTalk(req, context) {
      return { talk: talkToProto(await deleteTalk(ctx.deps, callerOf(context), req.id)) };
    },
    async addParticipant(req, context) {
      const input = { chatId: req.chatId, agentId: req.agentId, ownerType: req.ownerType, ownerId: req.ownerId };
      return { participant: participantToProto(await addParticipant(ctx.deps, callerOf(context), input)) };
    },
    async removeParticipant(req, context) {
      const input = { chatId: req.chatId, participantId: req.participantId };
      return { participant: participantToProto(await removeParticipant(ctx.deps, callerOf(context), input)) };
    },
    async listParticipants(req, context) {
      const participants = await listParticipants(ctx.deps, callerOf(context), req.chatId);
      return { result: participants.map(participantToProto) };
    },
    watchTalk(req, context) {
      const input = { chatId: req.chatId, afterSeq: Number(req.afterSeq) };
      const produce = talkWatch(ctx.deps, ctx.watch, callerOf(context), input, context.signal);
      return LiveBody.of(produce, {
        message: (item) => (item.kind === "event" ? talkEventMessage(item.event) : talkHeartbeatMessage(item.lastSeq)),
        frame: (item) => (item.kind === "event" ? talkEventFrame(item.event) : talkHeartbeatFrame(item.lastSeq)),
      });
    },
    watchEvents(req, context) {
      const produce = eventsWatch(ctx.deps, ctx.watch, callerOf(context), { cursor: req.cursor }, context.signal);
      // Each frame is the event's shared bytes and this stream's cursor.
      return LiveBody.of(produce, {
        message: (item) =>
          create(
            WatchEventsResponseSchema,
            item.kind === "event"
              ? { kind: { case: "event", value: eventToProto(item.event) }, cursor: item.cursor }
              : { kind: { case: "heartbeat", value: create(HeartbeatSchema, { tmCreate: timestampNow() }) }, cursor: item.cursor },
          ),
        frame: (item) => (item.kind === "event" ? feedEventFrame(item.event, item.cursor) : feedHeartbeatFrame(item.cursor)),
      });
    },
  };
}
