/** The console's entry: sign-in, then the talk list and the open talk side by side. */
import "./style.css";
import { type Api, Code, ConnectError, createApi } from "./api.js";
import { clearSession, loadSession, saveSession, type Session } from "./auth.js";
import { createTalkForm } from "./create-talk.js";
import { h, replaceChildren } from "./dom.js";
import type { LiveStatus } from "./live.js";
import { Names } from "./names.js";
import { signInScreen } from "./sign-in.js";
import { TalkList } from "./talk-list.js";
import { TalkView } from "./talk-view.js";

const root = document.getElementById("app") as HTMLElement;
const talkPath = /^\/talks\/([0-9a-fA-F-]{36})$/;
/** Follows the address bar (back/forward) while the console is shown. */
let route: (() => void) | undefined;
addEventListener("popstate", () => route?.());

function showSignIn(notice = ""): void {
  route = undefined;
  replaceChildren(
    root,
    signInScreen((session, api, remember) => {
      saveSession(session, remember);
      showConsole(session, api);
    }, notice),
  );
}

function showConsole(session: Session, api: Api): void {
  const names = new Names(api, () => {
    view.refresh();
    list.refresh();
  });
  names.learn(session.agentId, session.name);
  const view = new TalkView(api, session, names);
  const feed = h("span", { class: "live-status connecting", "data-feed": "connecting" }, "○ connecting");
  const list = new TalkList(api, session, names, {
    select: (talkId) => openTalk(talkId, true),
    status: (status: LiveStatus) => {
      feed.className = `live-status ${status}`;
      feed.dataset["feed"] = status;
      feed.textContent = status === "live" ? "● live" : `○ ${status}`;
    },
  });
  const openTalk = (talkId: string, push: boolean): void => {
    list.select(talkId);
    if (view.talkId !== talkId) void view.open(talkId);
    if (push && location.pathname !== `/talks/${talkId}`) history.pushState(null, "", `/talks/${talkId}`);
  };
  route = () => {
    const match = talkPath.exec(location.pathname);
    if (match?.[1] !== undefined) openTalk(match[1], false);
    else {
      list.select(undefined);
      view.close();
    }
  };
  const signOut = (): void => {
    list.stop();
    view.close();
    clearSession();
    history.pushState(null, "", "/");
    showSignIn();
  };

  replaceChildren(
    root,
    h(
      "header",
      { class: "topbar" },
      h("span", { class: "brand" }, "Talkhub"),
      h(
        "span",
        { class: "me", title: `customer ${session.customerId}` },
        "Signed in as ",
        h("strong", {}, session.name || "agent"),
        " ",
        h("code", { class: "agent-id", "data-agent-id": session.agentId }, session.agentId),
        session.role === "admin" && h("span", { class: "badge" }, "admin"),
      ),
      feed,
      h("button", { type: "button", class: "secondary", "data-action": "sign-out", onclick: signOut }, "Sign out"),
    ),
    h(
      "div",
      { class: "layout" },
      h(
        "aside",
        { class: "sidebar" },
        createTalkForm(api, (talk) => {
          list.upsert(talk);
          openTalk(talk.id, true);
        }),
        list.element,
      ),
      view.element,
    ),
  );
  list.start();
  route();
}

async function start(): Promise<void> {
  const session = loadSession();
  if (session === undefined) {
    showSignIn();
    return;
  }
  const api = createApi(session.token);
  try {
    await api.talks.listTalks({ pageSize: 1 });
  } catch (error) {
    if (ConnectError.from(error).code === Code.Unauthenticated) {
      clearSession();
      showSignIn("The saved token is no longer accepted: paste a new one.");
      return;
    }
    // Anything else (the service restarting...): the console retries on its own.
  }
  showConsole(session, api);
}

void start();
