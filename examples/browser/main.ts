/**
 * A browser page over Connect-Web: watches one talk with the client package's resumable
 * WatchTalk and sends messages to it. It may be served from any origin: Talkhub answers CORS
 * preflights for the origins in TALKHUB_CORS_ORIGINS (every origin by default).
 *
 * Bundle it with any bundler (the test uses esbuild: main.ts -> main.js next to index.html) and
 * open index.html#url=<Talkhub URL>&token=<agent token>&talk=<talk id>.
 */
import { createTalkhubClient } from "../../clients/ts/src/index.js";

const params = new URLSearchParams(location.hash.slice(1));
const element = <T extends HTMLElement>(id: string): T => {
  const found = document.getElementById(id);
  if (found === null) throw new Error(`#${id} is missing`);
  return found as T;
};
const status = element<HTMLOutputElement>("status");
const events = element<HTMLOListElement>("events");
const form = element<HTMLFormElement>("send");
const error = element<HTMLParagraphElement>("error");

const chatId = params.get("talk") ?? "";
const talkhub = createTalkhubClient({ baseUrl: params.get("url") ?? location.origin, token: params.get("token") ?? "" });

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const input = form.elements.namedItem("text") as HTMLInputElement;
  const text = input.value;
  input.value = "";
  talkhub.messages.sendMessage({ chatId, text }).catch((e: unknown) => (error.textContent = String(e)));
});

async function watch(): Promise<void> {
  const stream = talkhub.watchTalk({ chatId }, { onStatus: (s) => (status.value = s) });
  for await (const response of stream) {
    if (response.kind.case !== "event") continue;
    const { seq, type, payload } = response.kind.value;
    const item = document.createElement("li");
    item.dataset["seq"] = String(seq);
    item.textContent = payload.case === "messageCreated" ? `${type}: ${payload.value.text}` : type;
    events.append(item);
  }
}

watch().catch((e: unknown) => {
  status.value = "stopped";
  error.textContent = String(e);
});
