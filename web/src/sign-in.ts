/**
 * The sign-in screen: paste a token; it is checked with one call before it is kept (for this
 * tab, or on this device when "remember me" is ticked).
 */
import { type Api, createApi, describeError } from "./api.js";
import { decodeToken, type Session } from "./auth.js";
import { h } from "./dom.js";

export function signInScreen(signedIn: (session: Session, api: Api, remember: boolean) => void, notice = ""): HTMLElement {
  const token = h("textarea", {
    name: "token",
    rows: 5,
    placeholder: "eyJhbGciOi…",
    "aria-label": "Token",
    spellcheck: "false",
    autocomplete: "off",
  });
  const error = h("p", { class: "error", role: "alert", hidden: notice === "" }, notice);
  const remember = h("input", { type: "checkbox", name: "remember" });
  const submit = h("button", { type: "submit" }, "Sign in");
  const form = h(
    "form",
    {
      class: "sign-in card",
      onsubmit: async (event: Event) => {
        event.preventDefault();
        error.hidden = true;
        submit.disabled = true;
        try {
          const session = decodeToken(token.value);
          const api = createApi(session.token);
          // The first call also enters the agent into the directory, so others can add it.
          await api.talks.listTalks({ pageSize: 1 });
          signedIn(session, api, remember.checked);
        } catch (e) {
          error.textContent = e instanceof Error && !("code" in e) ? e.message : describeError(e);
          error.hidden = false;
        } finally {
          submit.disabled = false;
        }
      },
    },
    h("h1", {}, "Talkhub"),
    h(
      "p",
      {},
      "Paste an agent token to sign in. ",
      h("code", {}, "npm start"),
      " prints demo tokens for Alice and Bob; ",
      h("code", {}, "npm run token"),
      " mints others.",
    ),
    token,
    h("label", { class: "remember" }, remember, " Remember me on this device"),
    submit,
    error,
  );
  return h("main", { class: "sign-in-page" }, form);
}
