/**
 * One open talk as the console knows it: a snapshot (GetTalk, ListMessages, ListParticipants)
 * followed by the talk's events in seq order. Every event carries the resource after the
 * change, so applying one is an upsert; an event at or below the last applied seq is ignored,
 * which makes a resumed or replayed stream safe.
 */
import type { Event } from "../../gen/talk/v1/events_pb.js";
import type { Message, Participant, Talk } from "../../gen/talk/v1/resources_pb.js";

export type ApplyResult = "applied" | "duplicate" | "gap";

export class TalkState {
  talk: Talk;
  /** The seq of the last event applied (the snapshot counts as the talk's last_seq). */
  lastSeq: bigint;
  readonly messages = new Map<string, Message>();
  /** By membership id. */
  readonly participants = new Map<string, Participant>();
  /** Set when the caller left or the talk was deleted. */
  ended: "left" | "deleted" | undefined;

  constructor(
    talk: Talk,
    messages: readonly Message[],
    participants: readonly Participant[],
    private readonly me: string,
  ) {
    this.talk = talk;
    this.lastSeq = talk.lastSeq;
    for (const message of messages) this.messages.set(message.id, message);
    for (const participant of participants) this.participants.set(participant.id, participant);
  }

  apply(event: Event): ApplyResult {
    if (event.seq <= this.lastSeq) return "duplicate";
    if (event.seq > this.lastSeq + 1n) return "gap";
    this.lastSeq = event.seq;
    const { payload } = event;
    switch (payload.case) {
      case "messageCreated":
      case "messageUpdated":
      case "messageDeleted":
        this.messages.set(payload.value.id, payload.value);
        break;
      case "reactionAdded":
      case "reactionRemoved":
        if (payload.value.message !== undefined) this.messages.set(payload.value.message.id, payload.value.message);
        break;
      case "participantJoined":
      case "participantLeft": {
        const { participant, talk } = payload.value;
        if (participant !== undefined) {
          if (payload.case === "participantJoined") this.participants.set(participant.id, participant);
          else this.participants.delete(participant.id);
          if (payload.case === "participantLeft" && participant.ownerId === this.me) this.ended = "left";
        }
        if (talk !== undefined) this.talk = talk;
        break;
      }
      case "talkUpdated":
      case "talkClosed":
      case "talkReopened":
        this.talk = payload.value;
        break;
      case "talkDeleted":
        this.talk = payload.value;
        this.ended = "deleted";
        break;
      case undefined:
        break;
    }
    return "applied";
  }

  /** The caller's own membership, if any. */
  myMembership(): Participant | undefined {
    for (const participant of this.participants.values()) if (participant.ownerId === this.me) return participant;
    return undefined;
  }
}
