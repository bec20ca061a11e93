/**
 * What this process last knew of the talks it sends to: the talk (its head, status, customer)
 * and which agents were members at that head. Sends planned from it are committed only if the
 * talk's head has not moved since (every change to a talk moves its head), so a stale entry
 * costs one failed compare-and-set and a fresh read, never a wrong send. Least recently used
 * talks are forgotten beyond `capacity`.
 */
import type { AgentId, MessageId, TalkId } from "../domain/model/ids.js";
import type { Talk } from "../domain/model/model.js";

export interface KnownTalk {
  readonly talk: Talk;
  /** Agents known to take part in the talk at this head; others are unknown, not absent. */
  readonly members: ReadonlySet<AgentId>;
}

export class KnownTalks {
  readonly #talks = new Map<TalkId, KnownTalk>();
  /** Parent message -> its talk; a message never changes talk. */
  readonly #parents = new Map<MessageId, TalkId>();

  constructor(private readonly capacity: number) {}

  get(id: TalkId): KnownTalk | undefined {
    const known = this.#talks.get(id);
    if (known !== undefined) {
      // Map order is insertion order: re-inserting marks it most recently used.
      this.#talks.delete(id);
      this.#talks.set(id, known);
    }
    return known;
  }

  /** Whether sending as `agent` to talk `id` can be planned without reading the talk. */
  knows(id: TalkId, agent: AgentId): boolean {
    return this.#talks.get(id)?.members.has(agent) ?? false;
  }

  /** Records a talk as read, with the members found among the agents asked about; returns what is now known. */
  read(talk: Talk, members: ReadonlySet<AgentId>): KnownTalk {
    const before = this.#talks.get(talk.id);
    // At the same head, what was known of other agents still holds.
    const merged = before !== undefined && before.talk.lastSeq === talk.lastSeq ? new Set([...before.members, ...members]) : members;
    const known = { talk, members: merged };
    this.#put(known);
    return known;
  }

  /** Records the talk's state after this process moved its head. */
  advanced(talk: Talk): void {
    const before = this.#talks.get(talk.id);
    if (before !== undefined) this.#put({ talk, members: before.members });
  }

  forget(id: TalkId): void {
    this.#talks.delete(id);
  }

  parentTalk(id: MessageId): TalkId | undefined {
    return this.#parents.get(id);
  }

  parent(id: MessageId, talk: TalkId): void {
    this.#parents.delete(id);
    this.#parents.set(id, talk);
    if (this.#parents.size > this.capacity) this.#parents.delete(this.#parents.keys().next().value as MessageId);
  }

  #put(known: KnownTalk): void {
    this.#talks.delete(known.talk.id);
    this.#talks.set(known.talk.id, known);
    if (this.#talks.size > this.capacity) this.#talks.delete(this.#talks.keys().next().value as TalkId);
  }
}
