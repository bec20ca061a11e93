/** Ids, callers and talks shared by the send path's unit tests. */
import type { AgentId, CustomerId, MessageId, TalkId } from "../../src/domain/model/ids.js";
import type { Identity } from "../../src/domain/model/identity.js";
import type { Talk } from "../../src/domain/model/model.js";

export const customer = "c0000000-0000-4000-8000-000000000001" as CustomerId;
export const otherCustomer = "c0000000-0000-4000-8000-000000000002" as CustomerId;
/** When the fixtures' talks and stored messages were created. */
export const created = new Date(Date.UTC(2026, 0, 1, 0, 0, 0));
/** The clock of the sends under test. */
export const now = new Date(Date.UTC(2026, 0, 1, 0, 0, 10));

export function caller(agentId: string, customerId: CustomerId = customer): Identity {
  return { agentId: agentId as AgentId, customerId, name: undefined, role: "agent", expiresAt: Infinity };
}

export const ann = caller("a0000000-0000-4000-8000-00000000000a");
export const bob = caller("a0000000-0000-4000-8000-00000000000b");
export const outsider = caller("a0000000-0000-4000-8000-00000000000f");

export const tid = (n: number) => `70000000-0000-4000-8000-${String(n).padStart(12, "0")}` as TalkId;
export const mid = (n: number) => `40000000-0000-4000-8000-${String(n).padStart(12, "0")}` as MessageId;

/** An active group talk of `customer` at head 2, with `fields` over it. */
export function groupTalk(id: TalkId, fields: Partial<Talk> = {}): Talk {
  return {
    id,
    customerId: customer,
    type: "group",
    name: "talk",
    detail: "",
    status: "active",
    memberCount: 2,
    lastSeq: 2,
    tmCreate: created,
    tmUpdate: created,
    tmDelete: null,
    tmActivity: created,
    ...fields,
  };
}
