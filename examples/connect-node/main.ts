/**
 * A Node service over Connect-Node: a bot that welcomes every agent who joins one of its group
 * talks. It uses the client package (clients/ts) with a gRPC transport over HTTP/2 from
 * @connectrpc/connect-node, and the package's resumable WatchEvents: a dropped connection or a
 * restarted Talkhub costs it nothing, and it never welcomes anyone twice.
 *
 *   TALKHUB_URL=http://127.0.0.1:8080 TALKHUB_TOKEN=<agent token> node --import tsx examples/connect-node/main.ts
 *
 * It prints "ready" once the watch is live, and one line per welcome.
 */
import { Http2SessionManager, createGrpcTransport } from "@connectrpc/connect-node";
import { createTalkhubClient } from "../../clients/ts/src/index.js";

const baseUrl = process.env["TALKHUB_URL"] ?? "http://127.0.0.1:8080";
const token = process.env["TALKHUB_TOKEN"];
if (token === undefined || token === "") {
  console.error("TALKHUB_TOKEN is required (npm run token -- --customer <uuid> --agent <uuid>)");
  process.exit(2);
}
// The bot's own agent id: its token's subject (a JWT: the claims are the middle part).
const claims: unknown = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8"));
const selfId = typeof claims === "object" && claims !== null && "sub" in claims && typeof claims.sub === "string" ? claims.sub : "";

const sessionManager = new Http2SessionManager(baseUrl);
const talkhub = createTalkhubClient({
  baseUrl,
  token,
  transport: (interceptors) => createGrpcTransport({ baseUrl, interceptors, sessionManager }),
});

const stop = new AbortController();
for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => stop.abort());

let ready = false;
try {
  const feed = talkhub.watchEvents(
    {},
    {
      signal: stop.signal,
      onStatus: (status, error) => {
        if (status === "live" && !ready) {
          ready = true;
          console.log("ready");
        }
        if (status === "reconnecting" && error !== undefined) console.error(`watch interrupted (${error.message}); resuming`);
      },
    },
  );
  for await (const response of feed) {
    if (response.kind.case !== "event") continue;
    const { payload, chatId } = response.kind.value;
    if (payload.case !== "participantJoined") continue;
    const joined = payload.value.participant;
    if (joined === undefined || joined.ownerId === selfId) continue;
    const talk = payload.value.talk;
    if (talk !== undefined && talk.type !== "group") continue;
    await talkhub.messages.sendMessage({ chatId, text: `Welcome, ${joined.ownerName || "new colleague"}!` });
    console.log(`welcomed ${joined.ownerId} in ${chatId}`);
  }
} catch (error) {
  console.error(`watch stopped: ${String(error)}`);
  process.exitCode = 1;
} finally {
  sessionManager.abort();
}
