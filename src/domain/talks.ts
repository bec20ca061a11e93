/** Talks: create (the caller joins), read, list, update, close, reopen, delete. */
import { findLiveAgents } from "../store/agent-store.js";
import { commitTalkChange } from "../store/talk-change-store.js";
import { findTalkByPair, findTalkView, insertTalk, listTalksOfAgent } from "../store/talk-store.js";
import { changeAtHead, commitOf } from "./write/change-at-head.js";
import type { DomainDeps } from "./deps.js";
import { FailedPrecondition, InvalidArgument, NotFound } from "./model/errors.js";
import { encodeEvent } from "../bus/event-codec.js";
import { newId, type AgentId, type TalkId } from "./model/ids.js";
import type { Identity } from "./model/identity.js";
import { limits } from "./model/limits.js";
import type { Agent, Page, Talk, TalkType } from "./model/model.js";
import { decodePageToken, encodePageToken } from "./model/page-token.js";
import { pairKey } from "./model/pair-key.js";
import { joinTalk } from "./participants.js";
import { TalkChange } from "./write/talk-change.js";
import { actorOf, transact } from "./write/transaction.js";
import * as validate from "./model/validate.js";

const talkTypes = ["normal", "group"] as const satisfies readonly TalkType[];

export interface CreateTalkInput {
  readonly type: string;
  readonly name: string;
  readonly detail: string;
  readonly participantIds: readonly string[];
}

/**
 * Creates a talk with the caller and the named agents in it. A normal talk between two agents
 * exists once: creating it again returns the live one (the database's unique index decides,
 * so concurrent creates agree too).
 */
export async function createTalk(deps: DomainDeps, caller: Identity, input: CreateTalkInput): Promise<Talk> {
  if (input.participantIds.length > limits.maxInitialParticipants) {
    throw new InvalidArgument("participant_ids", `at most ${limits.maxInitialParticipants} agents`);
  }
  const ids = input.participantIds.map((id, i) => validate.requireId<AgentId>(`participant_ids[${i}]`, id));
  const others = [...new Set(ids)].filter((id) => id !== caller.agentId);
  const type: TalkType = input.type === "" ? (others.length === 1 ? "normal" : "group") : validate.oneOf("type", input.type, talkTypes);
  if (type === "normal" && others.length > 1) {
    throw new InvalidArgument("participant_ids", "a normal talk has at most two participants");
  }
  const name = validate.text("name", input.name, limits.maxTalkNameLength);
  const detail = validate.text("detail", input.detail, limits.maxTalkDetailLength);
  const pair = type === "normal" && others[0] !== undefined ? pairKey(caller.agentId, others[0]) : null;
  await deps.writeLimits.take(caller, "talkCreates");

  return transact(deps, async (trx) => {
    const found = await findLiveAgents(trx, caller.customerId, [caller.agentId, ...others]);
    const byId = new Map(found.map((agent) => [agent.id, agent]));
    const members: Agent[] = [];
    for (const id of [caller.agentId, ...others]) {
      const agent = byId.get(id);
      if (agent === undefined) throw new NotFound("agent", `${id} (participant_ids)`);
      members.push(agent);
    }
    const now = deps.now();
    const draft: Talk = {
      id: newId<TalkId>(),
      customerId: caller.customerId,
      type,
      name,
      detail,
      status: "active",
      memberCount: 0,
      lastSeq: 0,
      tmCreate: now,
      tmUpdate: now,
      tmDelete: null,
      tmActivity: now,
    };
    const inserted = await insertTalk(trx, draft, pair);
    if (inserted === null) {
      // The pair already has a live normal talk: that one is the answer.
      const existing = pair === null ? null : await findTalkByPair(trx, caller.customerId, pair);
      if (existing === null) throw new FailedPrecondition("the talk changed while it was created; try again");
      return { result: existing, events: [] };
    }
    // Each member joins as if added one by one: a participant_joined event and a system message.
    const change = new TalkChange(inserted, actorOf(caller), now);
    for (const agent of members) joinTalk(change, agent);
    const events = change.events.map(encodeEvent);
    if (!(await commitTalkChange(trx, commitOf(change, inserted.lastSeq, events)))) {
      throw new FailedPrecondition("the talk changed while it was created; try again");
    }
    return { result: change.talk, events };
  });
}

async function visibleTalk(deps: DomainDeps, caller: Identity, rawId: string, field = "id"): Promise<Talk> {
  const id = validate.requireId<TalkId>(field, rawId);
  const view = await findTalkView(deps.db, caller.customerId, id, caller.agentId);
  if (view === null || view.participantId === null) throw new NotFound("talk", id);
  return view.talk;
}

/** One talk the caller takes part in. */
export async function getTalk(deps: DomainDeps, caller: Identity, rawId: string): Promise<Talk> {
  return visibleTalk(deps, caller, rawId);
}

/** The caller's talks, most recent activity first. */
export async function listTalks(deps: DomainDeps, caller: Identity, input: { pageSize: number; pageToken: string }): Promise<Page<Talk>> {
  const size = validate.pageSize("page_size", input.pageSize);
  // Each agent's list of talks is its own: another agent's token is refused.
  const list = ["talks", caller.customerId, caller.agentId] as const;
  const after = decodePageToken("page_token", input.pageToken, list, ["number", "number", "string"] as const);
  if (after !== null && after[1] > 999) throw new InvalidArgument("page_token", "is not a page token of this list");
  const cursor =
    after === null ? null : { activityMs: after[0], activityUs: after[1], id: validate.requireId<TalkId>("page_token", after[2]) };
  const rows = await listTalksOfAgent(deps.db, caller.customerId, caller.agentId, cursor, size + 1);
  const items = rows.slice(0, size);
  const last = items.at(-1)?.position;
  return {
    items: items.map((row) => row.talk),
    nextPageToken: rows.length > size && last !== undefined ? encodePageToken(list, [last.activityMs, last.activityUs, last.id]) : "",
  };
}

/** Changes a talk the caller takes part in, from its head (see change-at-head.ts). */
function changeOwnTalk<T>(deps: DomainDeps, caller: Identity, id: TalkId, decide: (change: TalkChange) => T): Promise<T> {
  return changeAtHead(deps, caller, { of: { talkId: id } }, () => new NotFound("talk", id), decide);
}

/** Changes a talk's name and/or detail (unset fields stay). */
export async function updateTalk(
  deps: DomainDeps,
  caller: Identity,
  input: { id: string; name: string | undefined; detail: string | undefined },
): Promise<Talk> {
  const id = validate.requireId<TalkId>("id", input.id);
  const name = input.name === undefined ? undefined : validate.text("name", input.name, limits.maxTalkNameLength);
  const detail = input.detail === undefined ? undefined : validate.text("detail", input.detail, limits.maxTalkDetailLength);
  await deps.writeLimits.take(caller, "edits");
  return changeOwnTalk(deps, caller, id, (change) => {
    change.requireActive();
    if (name === undefined && detail === undefined) return change.talk;
    const talk = change.updateTalk({ name: name ?? change.talk.name, detail: detail ?? change.talk.detail });
    change.record({ type: "talk_updated", talk });
    return change.talk;
  });
}

/** Closes an active talk. */
export async function closeTalk(deps: DomainDeps, caller: Identity, rawId: string): Promise<Talk> {
  const id = validate.requireId<TalkId>("id", rawId);
  await deps.writeLimits.take(caller, "talkStatus");
  return changeOwnTalk(deps, caller, id, (change) => {
    if (change.talk.status === "closed") throw new FailedPrecondition("the talk is already closed");
    change.record({ type: "talk_closed", talk: change.updateTalk({ status: "closed" }) });
    return change.talk;
  });
}

/** Reopens a closed talk. */
export async function reopenTalk(deps: DomainDeps, caller: Identity, rawId: string): Promise<Talk> {
  const id = validate.requireId<TalkId>("id", rawId);
  await deps.writeLimits.take(caller, "talkStatus");
  return changeOwnTalk(deps, caller, id, (change) => {
    if (change.talk.status === "active") throw new FailedPrecondition("the talk is already active");
    change.record({ type: "talk_reopened", talk: change.updateTalk({ status: "active" }) });
    return change.talk;
  });
}

/** Deletes a talk (soft): from now on it is not found by anyone. */
export async function deleteTalk(deps: DomainDeps, caller: Identity, rawId: string): Promise<Talk> {
  const id = validate.requireId<TalkId>("id", rawId);
  await deps.writeLimits.take(caller, "deletes");
  return changeOwnTalk(deps, caller, id, (change) => {
    change.record({ type: "talk_deleted", talk: change.updateTalk({ tmDelete: change.now }) });
    return change.talk;
  });
}
