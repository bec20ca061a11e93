/**
 * The signed-in agent's talks, most recent activity first: TalkService.ListTalks, kept up to
 * date by TalkService.WatchEvents, which the client package resumes with its cursor after a
 * dropped connection.
 */
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import type { Event } from "../../gen/talk/v1/events_pb.js";
import type { Talk } from "../../gen/talk/v1/resources_pb.js";
import { type Api, Code, describeError } from "./api.js";
import type { Session } from "./auth.js";
import { h, replaceChildren, shortTime } from "./dom.js";
import { follow, type Live, type LiveStatus } from "./live.js";
import type { Names } from "./names.js";

interface Entry {
  talk: Talk;
  /** The latest message seen live, if any. */
  preview: string;
  unread: number;
  /** Names of the other participants, for talks without a name. */
  others: string[] | undefined;
}

const millis = (t: Timestamp | undefined): number => (t === undefined ? 0 : timestampDate(t).getTime());

export class TalkList {
  readonly element = h("nav", { class: "talk-list", "aria-label": "Talks" });
  private readonly entries = new Map<string, Entry>();
  private selected: string | undefined;
  private cursor = "";
  private live: Live | undefined;
  private error = "";

  constructor(
    private readonly api: Api,
    private readonly session: Session,
    private readonly names: Names,
    private readonly hooks: { select(talkId: string): void; status(status: LiveStatus): void },
  ) {}

  start(): void {
    this.live = follow(
      (signal) => this.api.watchEvents({ cursor: this.cursor }, { signal, onStatus: (status) => this.hooks.status(status) }),
      (response) => {
        if (response.cursor !== "") this.cursor = response.cursor;
        if (response.kind.case === "event") this.apply(response.kind.value);
      },
      (error) => {
        // A cursor the server no longer accepts: start from now, which reloads the list.
        if (error.code === Code.OutOfRange || error.code === Code.InvalidArgument) {
          this.cursor = "";
          this.start();
        }
      },
    );
    void this.reload();
  }

  stop(): void {
    this.live?.stop();
  }

  select(talkId: string | undefined): void {
    this.selected = talkId;
    const entry = talkId === undefined ? undefined : this.entries.get(talkId);
    if (entry !== undefined) entry.unread = 0;
    this.render();
  }

  /** A talk the agent just created or opened, shown before its events arrive. */
  upsert(talk: Talk): void {
    this.put(talk);
    this.render();
  }

  refresh(): void {
    this.render();
  }

  private async reload(): Promise<void> {
    try {
      let pageToken = "";
      do {
        const response = await this.api.talks.listTalks({ pageSize: 200, pageToken });
        for (const talk of response.result) this.put(talk);
        pageToken = response.nextPageToken;
      } while (pageToken !== "");
      this.error = "";
    } catch (error) {
      this.error = `Could not list the talks: ${describeError(error)}`;
    }
    this.render();
  }

  /** Keeps the newer of two versions of a talk. */
  private put(talk: Talk): Entry {
    const entry = this.entries.get(talk.id);
    if (entry === undefined) {
      const created: Entry = { talk, preview: "", unread: 0, others: undefined };
      this.entries.set(talk.id, created);
      if (talk.name === "") void this.loadOthers(created);
      return created;
    }
    if (talk.lastSeq >= entry.talk.lastSeq) entry.talk = talk;
    return entry;
  }

  private async loadOthers(entry: Entry): Promise<void> {
    try {
      const { result } = await this.api.talks.listParticipants({ chatId: entry.talk.id });
      for (const p of result) this.names.learn(p.ownerId, p.ownerName);
      entry.others = result.filter((p) => p.ownerId !== this.session.agentId).map((p) => p.ownerName || this.names.of(p.ownerId));
      this.render();
    } catch {
      // Left or deleted meanwhile: its events remove it.
    }
  }

  private apply(event: Event): void {
    const { payload } = event;
    const mine = event.actor?.ownerId === this.session.agentId;
    switch (payload.case) {
      case "talkDeleted":
        this.entries.delete(event.chatId);
        break;
      case "participantLeft":
      case "participantJoined": {
        if (payload.case === "participantLeft" && payload.value.participant?.ownerId === this.session.agentId) {
          this.entries.delete(event.chatId);
          break;
        }
        if (payload.value.talk !== undefined) {
          const entry = this.put(payload.value.talk);
          if (entry.talk.name === "") void this.loadOthers(entry);
        }
        break;
      }
      case "talkUpdated":
      case "talkClosed":
      case "talkReopened":
        this.put(payload.value);
        break;
      case "messageCreated":
      case "messageUpdated":
      case "messageDeleted":
      case "reactionAdded":
      case "reactionRemoved":
      case undefined: {
        const entry = this.entries.get(event.chatId);
        if (entry === undefined) {
          void this.fetchTalk(event.chatId);
          break;
        }
        if (event.tmCreate !== undefined && millis(event.tmCreate) > millis(entry.talk.tmActivity)) {
          entry.talk.tmActivity = event.tmCreate;
        }
        if (payload.case === "messageCreated") {
          const message = payload.value;
          entry.preview =
            message.type === "system"
              ? message.text
              : `${mine ? "You" : this.names.of(message.ownerId)}: ${message.text || "📎 attachment"}`;
          if (!mine && event.chatId !== this.selected) entry.unread += 1;
        }
        break;
      }
    }
    this.render();
  }

  private async fetchTalk(talkId: string): Promise<void> {
    try {
      const { talk } = await this.api.talks.getTalk({ id: talkId });
      if (talk !== undefined) this.upsert(talk);
    } catch {
      // Not (or no longer) a participant.
    }
  }

  private render(): void {
    const sorted = [...this.entries.values()].sort((a, b) => millis(b.talk.tmActivity) - millis(a.talk.tmActivity));
    replaceChildren(
      this.element,
      this.error && h("p", { class: "error" }, this.error),
      sorted.length === 0
        ? h("p", { class: "placeholder" }, "No talks yet.")
        : h(
            "ul",
            {},
            sorted.map((entry) => {
              const { talk } = entry;
              const title =
                talk.name || (entry.others === undefined ? "…" : entry.others.length > 0 ? entry.others.join(", ") : "Just you");
              const activity = talk.tmActivity === undefined ? undefined : timestampDate(talk.tmActivity);
              return h(
                "li",
                { class: "talk-item", "data-talk-id": talk.id, "aria-current": talk.id === this.selected ? "true" : undefined },
                h(
                  "button",
                  { type: "button", onclick: () => this.hooks.select(talk.id) },
                  h(
                    "span",
                    { class: "talk-item-title" },
                    title,
                    talk.status !== "active" && h("span", { class: "badge status-closed" }, talk.status),
                  ),
                  h("time", { class: "talk-item-time" }, shortTime(activity)),
                  h(
                    "span",
                    { class: "talk-item-preview" },
                    entry.preview || `${talk.type} · ${talk.memberCount} member${talk.memberCount === 1 ? "" : "s"}`,
                  ),
                  entry.unread > 0 && h("span", { class: "unread", "aria-label": `${entry.unread} unread` }, String(entry.unread)),
                ),
              );
            }),
          ),
    );
  }
}
