/**
 * An open talk: a snapshot, then TalkService.WatchTalk from the snapshot's last_seq. After a
 * dropped connection the client package resumes the watch with after_seq = the last seq it
 * delivered, so nothing is lost and nothing shows twice; a position the server no longer keeps (OUT_OF_RANGE) or a
 * gap reloads the snapshot.
 */
import type { Message, Participant } from "../../gen/talk/v1/resources_pb.js";
import { type Api, Code, describeError } from "./api.js";
import type { Session } from "./auth.js";
import { createComposer, type Composer, type Draft } from "./composer.js";
import { h, randomId, replaceChildren } from "./dom.js";
import { follow, type Live, type LiveStatus } from "./live.js";
import { renderThread, type MessageActions } from "./message-view.js";
import type { Names } from "./names.js";
import { renderParticipants } from "./participants.js";
import { TalkState } from "./talk-state.js";
import { buildThreads } from "./thread-tree.js";

const pageSize = 200;
const maxPages = 25;

export class TalkView {
  readonly element = h("section", { class: "talk", "aria-label": "Talk" });
  private state: TalkState | undefined;
  private live: Live | undefined;
  private status: LiveStatus = "connecting";
  private generation = 0;
  private renderQueued = false;
  private error = "";
  // What the signed-in agent is doing, kept across re-renders.
  private replyTo: string | undefined;
  private pickerFor: string | undefined;
  private editing: { id: string; draft: string } | undefined;
  private confirmingDelete: string | undefined;

  private readonly header = h("header", { class: "talk-header" });
  private readonly messages = h("div", { class: "messages", role: "log", "aria-live": "polite" });
  private readonly side = h("div", { class: "side" });
  private readonly errorBox = h("p", { class: "error", role: "alert", hidden: true });
  private readonly composer: Composer;

  constructor(
    private readonly api: Api,
    private readonly session: Session,
    private readonly names: Names,
  ) {
    this.composer = createComposer({ send: (draft) => this.send(draft), cancelReply: () => this.setReplyTo(undefined) });
    this.showEmpty();
  }

  get talkId(): string | undefined {
    return this.state?.talk.id;
  }

  async open(talkId: string): Promise<void> {
    this.close();
    const generation = this.generation;
    replaceChildren(this.element, h("p", { class: "placeholder" }, "Loading the talk…"));
    try {
      const state = await this.loadSnapshot(talkId);
      if (generation !== this.generation) return;
      this.state = state;
    } catch (error) {
      if (generation !== this.generation) return;
      replaceChildren(this.element, h("p", { class: "placeholder error" }, `Could not open the talk: ${describeError(error)}`));
      return;
    }
    replaceChildren(
      this.element,
      this.header,
      h("div", { class: "talk-body" }, h("div", { class: "conversation" }, this.messages, this.errorBox, this.composer.element), this.side),
    );
    this.render();
    this.messages.scrollTop = this.messages.scrollHeight;
    this.watch();
  }

  close(): void {
    this.generation += 1;
    this.live?.stop();
    this.live = undefined;
    this.state = undefined;
    this.replyTo = this.pickerFor = this.editing = this.confirmingDelete = undefined;
    this.error = "";
    this.showEmpty();
  }

  /** Re-renders, e.g. when agent names arrive. */
  refresh(): void {
    this.scheduleRender();
  }

  private showEmpty(): void {
    replaceChildren(this.element, h("p", { class: "placeholder" }, "Pick a talk on the left, or create one."));
  }

  /** The talk first (its last_seq is where the watch starts), then everything up to now. */
  private async loadSnapshot(talkId: string): Promise<TalkState> {
    const { talk } = await this.api.talks.getTalk({ id: talkId });
    if (talk === undefined) throw new Error("the talk is missing from the response");
    const [messages, participants] = await Promise.all([this.loadMessages(talkId), this.api.talks.listParticipants({ chatId: talkId })]);
    for (const p of participants.result) this.names.learn(p.ownerId, p.ownerName);
    return new TalkState(talk, messages, participants.result, this.session.agentId);
  }

  private async loadMessages(chatId: string): Promise<Message[]> {
    const all: Message[] = [];
    let pageToken = "";
    for (let page = 0; page < maxPages; page++) {
      const response = await this.api.messages.listMessages({ chatId, pageSize, pageToken });
      all.push(...response.result);
      pageToken = response.nextPageToken;
      if (pageToken === "") break;
    }
    return all;
  }

  private watch(): void {
    const state = this.state;
    if (state === undefined) return;
    const generation = this.generation;
    const onStatus = (status: LiveStatus): void => {
      if (generation !== this.generation) return;
      this.status = status;
      this.renderHeader();
    };
    this.live = follow(
      // The client resumes after the last seq it delivered, which is the last seq applied.
      (signal) => this.api.watchTalk({ chatId: state.talk.id, afterSeq: state.lastSeq }, { signal, onStatus }),
      (response) => {
        if (generation !== this.generation || response.kind.case !== "event") return;
        const result = this.state?.apply(response.kind.value);
        if (result === "gap") void this.resync();
        else if (result === "applied") {
          const payload = response.kind.value.payload;
          if (payload.case === "participantJoined")
            this.names.learn(payload.value.participant?.ownerId ?? "", payload.value.participant?.ownerName ?? "");
          this.scheduleRender();
        }
      },
      (error) => {
        if (generation !== this.generation) return;
        // A position the server no longer keeps: reload the snapshot and watch from it.
        if (error.code === Code.OutOfRange) {
          void this.resync();
          return;
        }
        if (error.code === Code.PermissionDenied || error.code === Code.NotFound) {
          if (this.state !== undefined) this.state.ended ??= error.code === Code.NotFound ? "deleted" : "left";
          this.scheduleRender();
        }
      },
    );
  }

  /** Reloads the snapshot (keeping what the agent is doing) and, when asked, restarts the watch. */
  private async resync(restart = true): Promise<void> {
    const talkId = this.state?.talk.id;
    if (talkId === undefined) return;
    const generation = this.generation;
    if (restart) this.live?.stop();
    try {
      const state = await this.loadSnapshot(talkId);
      if (generation !== this.generation) return;
      this.state = state;
      this.render();
    } catch (error) {
      this.showError(error);
    }
    if (restart && generation === this.generation) this.watch();
  }

  private scheduleRender(): void {
    if (this.renderQueued) return;
    this.renderQueued = true;
    setTimeout(() => {
      this.renderQueued = false;
      this.render();
    }, 0);
  }

  private render(): void {
    const state = this.state;
    if (state === undefined) return;
    this.renderHeader();
    this.renderMessages(state);
    const participants = [...state.participants.values()];
    replaceChildren(
      this.side,
      renderParticipants(state.talk, participants, this.session.agentId, this.names, {
        add: (agentId) => this.addParticipant(agentId),
        remove: (participant) => void this.removeParticipant(participant),
      }),
    );
    const reason =
      state.ended === "left"
        ? "You left this talk."
        : state.ended === "deleted"
          ? "This talk was deleted."
          : state.talk.status !== "active"
            ? "This talk is closed. Reopen it to write."
            : undefined;
    this.composer.setEnabled(reason === undefined, reason);
    const replied = this.replyTo === undefined ? undefined : state.messages.get(this.replyTo);
    this.composer.setReplyTo(
      replied === undefined
        ? undefined
        : `${replied.ownerId === this.session.agentId ? "yourself" : this.names.of(replied.ownerId)}: “${preview(replied.text)}”`,
    );
    this.errorBox.hidden = this.error === "";
    this.errorBox.textContent = this.error;
  }

  private renderHeader(): void {
    const state = this.state;
    if (state === undefined) return;
    const { talk } = state;
    const others = [...state.participants.values()].filter((p) => p.ownerId !== this.session.agentId);
    const title = talk.name || (others.length > 0 ? others.map((p) => p.ownerName || this.names.of(p.ownerId)).join(", ") : "Just you");
    const canManage = state.ended === undefined;
    replaceChildren(
      this.header,
      h("div", { class: "talk-title" }, h("h2", {}, title), talk.detail && h("p", { class: "detail" }, talk.detail)),
      h("span", { class: "badge" }, talk.type),
      h("span", { class: `badge status-${talk.status}`, "data-talk-status": talk.status }, talk.status),
      h("span", { class: `live-status ${this.status}`, "data-live": this.status, title: "Live updates" }, statusLabel(this.status)),
      canManage &&
        (talk.status === "active"
          ? h(
              "button",
              {
                type: "button",
                class: "secondary",
                "data-action": "close-talk",
                onclick: () => void this.call(() => this.api.talks.closeTalk({ id: talk.id })),
              },
              "Close talk",
            )
          : h(
              "button",
              {
                type: "button",
                class: "secondary",
                "data-action": "reopen-talk",
                onclick: () => void this.call(() => this.api.talks.reopenTalk({ id: talk.id })),
              },
              "Reopen",
            )),
    );
  }

  private renderMessages(state: TalkState): void {
    const box = this.messages;
    const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
    const scrollTop = box.scrollTop;
    const editFocused = document.activeElement?.classList.contains("edit-input") ?? false;
    const writable = state.ended === undefined && state.talk.status === "active";
    const threads = buildThreads(state.messages.values());
    const ctx = {
      me: this.session.agentId,
      names: this.names,
      writable,
      pickerFor: this.pickerFor,
      editing: this.editing,
      confirmingDelete: this.confirmingDelete,
      actions: this.messageActions,
    };
    replaceChildren(
      box,
      threads.length === 0
        ? h("p", { class: "placeholder" }, "No messages yet. Say hello!")
        : threads.map((node) => renderThread(node, ctx)),
    );
    if (nearBottom) box.scrollTop = box.scrollHeight;
    else box.scrollTop = scrollTop;
    if (editFocused) box.querySelector<HTMLInputElement>(".edit-input")?.focus();
  }

  private readonly messageActions: MessageActions = {
    reply: (message) => {
      this.setReplyTo(message.id);
      this.composer.focus();
    },
    toggleReaction: (message, emoji) => {
      const mine = message.metadata?.reactions.some((r) => r.emoji === emoji && r.ownerId === this.session.agentId) ?? false;
      this.pickerFor = undefined;
      this.scheduleRender();
      void this.call(() =>
        mine
          ? this.api.messages.removeReaction({ messageId: message.id, emoji })
          : this.api.messages.addReaction({ messageId: message.id, emoji }),
      );
    },
    togglePicker: (message) => {
      this.pickerFor = this.pickerFor === message.id ? undefined : message.id;
      this.scheduleRender();
    },
    startEdit: (message) => {
      this.editing = { id: message.id, draft: message.text };
      this.scheduleRender();
      setTimeout(() => this.messages.querySelector<HTMLInputElement>(".edit-input")?.focus(), 0);
    },
    editDraft: (text) => {
      if (this.editing !== undefined) this.editing = { ...this.editing, draft: text };
    },
    saveEdit: (message, text) => {
      void this.call(() => this.api.messages.updateMessage({ id: message.id, text })).then((ok) => {
        if (ok && this.editing?.id === message.id) {
          this.editing = undefined;
          this.scheduleRender();
        }
      });
    },
    cancelEdit: () => {
      this.editing = undefined;
      this.scheduleRender();
    },
    remove: (message) => {
      if (this.confirmingDelete !== message.id) {
        this.confirmingDelete = message.id;
        this.scheduleRender();
        setTimeout(() => {
          if (this.confirmingDelete === message.id) {
            this.confirmingDelete = undefined;
            this.scheduleRender();
          }
        }, 4_000);
        return;
      }
      this.confirmingDelete = undefined;
      void this.call(() => this.api.messages.deleteMessage({ id: message.id }));
    },
  };

  private setReplyTo(messageId: string | undefined): void {
    this.replyTo = messageId;
    this.scheduleRender();
  }

  private async send(draft: Draft): Promise<boolean> {
    const state = this.state;
    if (state === undefined) return false;
    const parentId = this.replyTo ?? "";
    const ok = await this.call(async () => {
      const { message } = await this.api.messages.sendMessage({
        chatId: state.talk.id,
        text: draft.text,
        medias: draft.medias,
        parentId,
        clientMessageId: randomId(),
      });
      // Shown at once; the stream's message_created for it is the same message. Only when it
      // is not there yet: a copy from the stream may already carry later changes.
      if (message !== undefined && this.state === state && !state.messages.has(message.id)) {
        state.messages.set(message.id, message);
        this.scheduleRender();
      }
    });
    if (ok) this.setReplyTo(undefined);
    return ok;
  }

  private async addParticipant(agentId: string): Promise<boolean> {
    const talkId = this.state?.talk.id;
    if (talkId === undefined) return false;
    return this.call(() => this.api.talks.addParticipant({ chatId: talkId, agentId }));
  }

  private async removeParticipant(participant: Participant): Promise<void> {
    const talkId = this.state?.talk.id;
    if (talkId !== undefined) await this.call(() => this.api.talks.removeParticipant({ chatId: talkId, participantId: participant.id }));
  }

  /** Runs a call; shows its error under the messages. True when it succeeded. */
  private async call(run: () => Promise<unknown>): Promise<boolean> {
    try {
      await run();
      if (this.error !== "") {
        this.error = "";
        this.scheduleRender();
      }
      return true;
    } catch (error) {
      this.showError(error);
      return false;
    }
  }

  private showError(error: unknown): void {
    this.error = describeError(error);
    this.scheduleRender();
  }
}

function preview(text: string): string {
  return text.length > 60 ? `${text.slice(0, 57)}…` : text;
}

function statusLabel(status: LiveStatus): string {
  switch (status) {
    case "live":
      return "● live";
    case "connecting":
      return "○ connecting";
    case "reconnecting":
      return "○ reconnecting";
    case "offline":
      return "○ offline";
    case "stopped":
      return "○ not live";
  }
}
