/** The "new talk" form: the other participants' agent ids and an optional name. */
import type { Talk } from "../../gen/talk/v1/resources_pb.js";
import { type Api, describeError } from "./api.js";
import { h } from "./dom.js";

export function createTalkForm(api: Api, created: (talk: Talk) => void): HTMLElement {
  const ids = h("input", {
    name: "participants",
    placeholder: "Agent ids, separated by spaces or commas",
    "aria-label": "Participant agent ids",
    autocomplete: "off",
  });
  const name = h("input", { name: "name", placeholder: "Name (optional)", "aria-label": "Talk name", maxlength: 200 });
  const error = h("p", { class: "error", role: "alert", hidden: true });
  const submit = h("button", { type: "submit" }, "Create talk");
  const details = h(
    "details",
    { class: "create-talk" },
    h("summary", {}, "New talk"),
    h(
      "form",
      {
        onsubmit: async (event: Event) => {
          event.preventDefault();
          const participantIds = ids.value.split(/[\s,;]+/).filter((id) => id !== "");
          error.hidden = true;
          submit.disabled = true;
          try {
            const { talk } = await api.talks.createTalk({ participantIds, name: name.value.trim() });
            if (talk !== undefined) {
              ids.value = name.value = "";
              details.open = false;
              created(talk);
            }
          } catch (e) {
            error.textContent = describeError(e);
            error.hidden = false;
          } finally {
            submit.disabled = false;
          }
        },
      },
      ids,
      name,
      submit,
      error,
    ),
  );
  return details;
}
