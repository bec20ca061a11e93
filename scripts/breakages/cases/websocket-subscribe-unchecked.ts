import { breakage } from "../breakage.js";

export default breakage({
  behaviour: "WebSocket talk topics need membership",
  breakage: "src/http/websocket.ts: subscribe acknowledges a talk topic without the membership check",
  edits: [
    {
      file: "src/http/websocket.ts",
      find: 'const talk = parsed.kind === "talk" ? await getTalk(this.options.deps, this.caller, parsed.talkId) : null;',
      replace: 'const talk = parsed.kind === "talk" ? await getTalk(this.options.deps, this.caller, parsed.talkId).catch(() => null) : null;',
    },
  ],
  suites: [
    { file: "test/security/authz-matrix.test.ts", filter: "WebSocket" },
    { file: "test/live/live-websocket.test.ts" },
  ],
});
