/** One message and its nested replies, with reactions, media links and the message actions. */
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { Message } from "../../gen/talk/v1/resources_pb.js";
import { h, shortTime } from "./dom.js";
import type { Names } from "./names.js";
import { groupReactions, quickEmojis } from "./reactions.js";
import type { ThreadNode } from "./thread-tree.js";

export interface MessageActions {
  reply(message: Message): void;
  toggleReaction(message: Message, emoji: string): void;
  togglePicker(message: Message): void;
  startEdit(message: Message): void;
  editDraft(text: string): void;
  saveEdit(message: Message, text: string): void;
  cancelEdit(): void;
  remove(message: Message): void;
}

export interface MessageContext {
  readonly me: string;
  readonly names: Names;
  /** The talk takes messages (it is active and the caller still takes part). */
  readonly writable: boolean;
  readonly pickerFor: string | undefined;
  readonly editing: { readonly id: string; readonly draft: string } | undefined;
  readonly confirmingDelete: string | undefined;
  readonly actions: MessageActions;
}

export function renderThread(node: ThreadNode, ctx: MessageContext): HTMLElement {
  const article = renderMessage(node.message, ctx);
  if (node.replies.length > 0) {
    article.append(
      h(
        "div",
        { class: "replies", "aria-label": "Replies" },
        node.replies.map((reply) => renderThread(reply, ctx)),
      ),
    );
  }
  return article;
}

function renderMessage(message: Message, ctx: MessageContext): HTMLElement {
  const system = message.type === "system" || message.ownerType === "system";
  const deleted = message.tmDelete !== undefined;
  const own = !system && message.ownerId === ctx.me;
  const classes = ["msg", system && "system", own && "own", deleted && "deleted"].filter(Boolean).join(" ");
  const created = message.tmCreate === undefined ? undefined : timestampDate(message.tmCreate);
  const article = h("article", { class: classes, "data-id": message.id, "data-seq": message.seq.toString() });

  if (system) {
    article.append(h("p", { class: "msg-text" }, message.text), h("time", { class: "msg-time" }, shortTime(created)));
    return article;
  }

  article.append(
    h(
      "header",
      { class: "msg-head" },
      h("span", { class: "author" }, own ? "You" : ctx.names.of(message.ownerId)),
      h("time", { class: "msg-time", datetime: created?.toISOString() ?? "" }, shortTime(created)),
    ),
  );

  if (deleted) {
    article.append(h("p", { class: "msg-text tombstone" }, "This message was deleted."));
  } else if (ctx.editing?.id === message.id) {
    article.append(editForm(message, ctx));
  } else {
    if (message.text !== "") article.append(h("p", { class: "msg-text" }, message.text));
    if (message.medias.length > 0) {
      article.append(
        h(
          "ul",
          { class: "medias" },
          message.medias
            .filter((media) => /^https?:\/\//i.test(media.url))
            .map((media) =>
              h(
                "li",
                {},
                h(
                  "a",
                  { href: media.url, target: "_blank", rel: "noopener noreferrer", title: media.type },
                  `📎 ${media.name || media.url}`,
                ),
              ),
            ),
        ),
      );
    }
  }

  article.append(reactionBar(message, ctx));
  if (ctx.writable && !deleted) article.append(actionBar(message, own, ctx));
  else if (ctx.writable)
    article.append(
      h(
        "div",
        { class: "msg-actions" },
        h("button", { type: "button", class: "link", onclick: () => ctx.actions.reply(message) }, "Reply"),
      ),
    );
  return article;
}

function reactionBar(message: Message, ctx: MessageContext): HTMLElement {
  const groups = groupReactions(message, ctx.me);
  const bar = h(
    "div",
    { class: "reactions" },
    groups.map((group) =>
      h(
        "button",
        {
          type: "button",
          class: group.mine ? "reaction mine" : "reaction",
          "data-emoji": group.emoji,
          title: group.agentIds.map((id) => (id === ctx.me ? "you" : ctx.names.of(id))).join(", "),
          "aria-pressed": group.mine ? "true" : "false",
          disabled: !ctx.writable || message.tmDelete !== undefined,
          onclick: () => ctx.actions.toggleReaction(message, group.emoji),
        },
        group.emoji,
        " ",
        h("span", { class: "count" }, String(group.count)),
      ),
    ),
  );
  if (ctx.pickerFor === message.id) {
    bar.append(
      h(
        "span",
        { class: "picker", role: "group", "aria-label": "Pick a reaction" },
        quickEmojis.map((emoji) =>
          h(
            "button",
            { type: "button", class: "pick", "data-emoji": emoji, onclick: () => ctx.actions.toggleReaction(message, emoji) },
            emoji,
          ),
        ),
      ),
    );
  }
  return bar;
}

function actionBar(message: Message, own: boolean, ctx: MessageContext): HTMLElement {
  const { actions } = ctx;
  const button = (label: string, action: string, onclick: () => void): HTMLButtonElement =>
    h("button", { type: "button", class: "link", "data-action": action, onclick }, label);
  return h(
    "div",
    { class: "msg-actions" },
    button("Reply", "reply", () => actions.reply(message)),
    button(ctx.pickerFor === message.id ? "Close" : "React", "react", () => actions.togglePicker(message)),
    own && button("Edit", "edit", () => actions.startEdit(message)),
    own && button(ctx.confirmingDelete === message.id ? "Really delete?" : "Delete", "delete", () => actions.remove(message)),
  );
}

function editForm(message: Message, ctx: MessageContext): HTMLElement {
  const input = h("input", {
    class: "edit-input",
    value: ctx.editing?.draft ?? message.text,
    "aria-label": "Edit message",
    maxlength: 10000,
  });
  input.addEventListener("input", () => ctx.actions.editDraft(input.value));
  input.addEventListener("keydown", (event) => {
    if (event.key === "Escape") ctx.actions.cancelEdit();
  });
  return h(
    "form",
    {
      class: "edit-form",
      onsubmit: (event: Event) => {
        event.preventDefault();
        ctx.actions.saveEdit(message, input.value);
      },
    },
    input,
    h("button", { type: "submit" }, "Save"),
    h("button", { type: "button", class: "secondary", onclick: () => ctx.actions.cancelEdit() }, "Cancel"),
  );
}
