/**
 * REST details that clients written from the spec run into: a reaction removed by DELETE with
 * its emoji in a JSON body; unknown fields refused by name (a message edit with medias), not
 * silently dropped; an empty query parameter (`?page_size=`) read as absent; 405 answers with
 * Allow.
 */
import { describe, expect, it } from "vitest";
import { backends, newCustomer, useService } from "../support/harness.js";
import { call, curl, expectRestError, expectStatus } from "../support/rest-helpers.js";

describe.each(backends)("REST details on %s", (backend) => {
  const env = useService(backend);
  const url = (): string => env.service.url;

  async function talkWithMessage(): Promise<{ token: string; talkId: string; messageId: string }> {
    const ann = await env.agent(newCustomer(), "Ann");
    const talk = expectStatus(await call(url(), "POST", "/v1.0/talks", ann.token, { name: "details" }), 200);
    const message = expectStatus(
      await curl(url(), "POST", `/v1.0/talks/${talk.id}/messages`, ann.token, JSON.stringify({ text: "original" })),
      200,
    );
    return { token: ann.token, talkId: talk.id, messageId: message.id };
  }

  it('DELETE of a reaction with {"emoji": ...} in a JSON body removes it', async () => {
    const { token, messageId } = await talkWithMessage();
    const reacted = expectStatus(
      await curl(url(), "POST", `/v1.0/messages/${messageId}/reactions`, token, JSON.stringify({ emoji: "👍" })),
      200,
    );
    expect(reacted.metadata.reactions).toHaveLength(1);
    const removed = expectStatus(
      await curl(url(), "DELETE", `/v1.0/messages/${messageId}/reactions`, token, JSON.stringify({ emoji: "👍" })),
      200,
    );
    expect(removed.metadata.reactions).toEqual([]);
    // A field the call does not have is refused there too.
    expectRestError(
      await curl(url(), "DELETE", `/v1.0/messages/${messageId}/reactions`, token, JSON.stringify({ emoji: "👍", kind: "x" })),
      400,
      "invalid_argument",
      "kind",
    );
  });

  it("a message PUT with medias is INVALID_ARGUMENT naming them, and changes nothing", async () => {
    const { token, messageId } = await talkWithMessage();
    const refused = await curl(
      url(),
      "PUT",
      `/v1.0/messages/${messageId}`,
      token,
      JSON.stringify({ text: "edited", medias: [{ url: "https://x.example/a.png" }], colour: "red" }),
    );
    expectRestError(refused, 400, "invalid_argument", "medias");
    expect(refused.json.message).toContain("colour");
    const fetched = expectStatus(await curl(url(), "GET", `/v1.0/messages/${messageId}`, token), 200);
    expect(fetched.text).toBe("original");
    // Known fields alone still work.
    expect(expectStatus(await curl(url(), "PUT", `/v1.0/messages/${messageId}`, token, JSON.stringify({ text: "edited" })), 200).text).toBe(
      "edited",
    );
  });

  it("?page_size= (empty) is the same as no page_size", async () => {
    const { token, talkId } = await talkWithMessage();
    const absent = expectStatus(await curl(url(), "GET", `/v1.0/talks/${talkId}/messages`, token), 200);
    const empty = expectStatus(await curl(url(), "GET", `/v1.0/talks/${talkId}/messages?page_size=&page_token=`, token), 200);
    expect(empty.result.map((m: { id: string }) => m.id)).toEqual(absent.result.map((m: { id: string }) => m.id));
    expect(empty.result.length).toBeGreaterThan(0);
  });

  it("405 answers carry Allow with the methods the path takes", async () => {
    const { token, messageId } = await talkWithMessage();
    const reply = await call(url(), "POST", `/v1.0/messages/${messageId}`, token, {});
    expect(reply.status).toBe(405);
    expect(reply.headers.get("allow")?.split(", ").sort()).toEqual(["DELETE", "GET", "PATCH", "PUT"]);
  });
});
