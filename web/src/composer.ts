/** The message box: text, an optional link attachment, and the message being replied to. */
import type { Media } from "../../gen/talk/v1/resources_pb.js";
import { h } from "./dom.js";

export interface Draft {
  readonly text: string;
  readonly medias: Pick<Media, "type" | "url" | "name">[];
}

export interface Composer {
  readonly element: HTMLElement;
  setReplyTo(label: string | undefined): void;
  setEnabled(enabled: boolean, reason?: string): void;
  focus(): void;
}

const mimeByExtension: Record<string, string> = {
  pdf: "application/pdf",
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  gif: "image/gif",
  webp: "image/webp",
  txt: "text/plain",
  csv: "text/csv",
  mp3: "audio/mpeg",
  mp4: "video/mp4",
  zip: "application/zip",
};

/** A media entry for a pasted link: its file name and a MIME type guessed from the extension. */
export function mediaFromUrl(raw: string): Draft["medias"][number] {
  const url = new URL(raw);
  if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error("Attachments must be http or https links.");
  const file = decodeURIComponent(url.pathname.split("/").filter(Boolean).pop() ?? "") || url.hostname;
  const extension = file.includes(".") ? (file.split(".").pop() ?? "").toLowerCase() : "";
  return { url: url.toString(), name: file, type: mimeByExtension[extension] ?? "application/octet-stream" };
}

export function createComposer(handlers: { send(draft: Draft): Promise<boolean>; cancelReply(): void }): Composer {
  const text = h("textarea", {
    name: "text",
    rows: 2,
    placeholder: "Write a message… (Enter sends, Shift+Enter for a new line)",
    "aria-label": "Message",
    maxlength: 10000,
  });
  const link = h("input", {
    name: "link",
    type: "url",
    placeholder: "Attach a link (https://…), optional",
    "aria-label": "Attachment link",
  });
  const send = h("button", { type: "submit", class: "send" }, "Send");
  const replyLabel = h("span", { class: "reply-label" });
  const replying = h(
    "div",
    { class: "replying", hidden: true },
    replyLabel,
    h("button", { type: "button", class: "link", "aria-label": "Cancel reply", onclick: () => handlers.cancelReply() }, "✕"),
  );
  const note = h("p", { class: "composer-note", hidden: true });
  const error = h("p", { class: "error", role: "alert", hidden: true });

  const submit = async (): Promise<void> => {
    error.hidden = true;
    let medias: Draft["medias"] = [];
    try {
      if (link.value.trim() !== "") medias = [mediaFromUrl(link.value.trim())];
    } catch (e) {
      error.textContent = e instanceof Error ? e.message : String(e);
      error.hidden = false;
      return;
    }
    if (text.value.trim() === "" && medias.length === 0) return;
    send.disabled = true;
    try {
      if (await handlers.send({ text: text.value, medias })) {
        text.value = "";
        link.value = "";
      }
    } finally {
      send.disabled = false;
      text.focus();
    }
  };
  text.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      void submit();
    }
  });
  const form = h(
    "form",
    {
      class: "composer",
      onsubmit: (event: Event) => {
        event.preventDefault();
        void submit();
      },
    },
    replying,
    h("div", { class: "composer-row" }, text, send),
    link,
    note,
    error,
  );
  return {
    element: form,
    setReplyTo(label) {
      replying.hidden = label === undefined;
      replyLabel.textContent = label === undefined ? "" : `Replying to ${label}`;
    },
    setEnabled(enabled, reason) {
      for (const control of [text, link, send]) control.disabled = !enabled;
      note.hidden = enabled;
      note.textContent = reason ?? "";
    },
    focus() {
      text.focus();
    },
  };
}
