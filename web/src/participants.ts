/** The participants panel: who takes part, remove or leave, and add an agent by id. */
import type { Participant, Talk } from "../../gen/talk/v1/resources_pb.js";
import { h } from "./dom.js";
import type { Names } from "./names.js";

export interface ParticipantActions {
  add(agentId: string): Promise<boolean>;
  remove(participant: Participant): void;
}

export function renderParticipants(
  talk: Talk,
  participants: readonly Participant[],
  me: string,
  names: Names,
  actions: ParticipantActions,
): HTMLElement {
  const active = talk.status === "active";
  const list = h(
    "ul",
    { class: "participant-list" },
    participants.map((p) => {
      const self = p.ownerId === me;
      // An agent may always leave; in a group talk any participant may remove another.
      const removable = self || talk.type === "group";
      return h(
        "li",
        { class: "participant", "data-agent-id": p.ownerId },
        h(
          "span",
          { class: "who" },
          h("span", { class: "name" }, self ? `${p.ownerName || names.of(p.ownerId)} (you)` : p.ownerName || names.of(p.ownerId)),
          h("code", { class: "agent-id", title: p.ownerId }, p.ownerId),
        ),
        removable &&
          h(
            "button",
            { type: "button", class: "link danger", "data-action": self ? "leave" : "remove", onclick: () => actions.remove(p) },
            self ? "Leave" : "Remove",
          ),
      );
    }),
  );
  const input = h("input", {
    name: "agent-id",
    placeholder: "Agent id (UUID)",
    "aria-label": "Agent id to add",
    autocomplete: "off",
    disabled: !active,
  });
  const form = h(
    "form",
    {
      class: "add-participant",
      onsubmit: async (event: Event) => {
        event.preventDefault();
        const id = input.value.trim();
        if (id !== "" && (await actions.add(id))) input.value = "";
      },
    },
    input,
    h("button", { type: "submit", disabled: !active }, "Add"),
  );
  return h(
    "aside",
    { class: "participants", "aria-label": "Participants" },
    h("h3", {}, `Participants (${participants.length})`),
    list,
    active ? form : h("p", { class: "hint" }, "A closed talk takes no new participants."),
  );
}
