import { breakage } from "../breakage.js";

export default breakage({
  behaviour: "WebSocket talk topics need membership",
  breakage:
    "src/http/websocket.ts: subscribe acknowledges a topic whose WatchTalk call was refused (the membership check's answer is dropped)",
  edits: [
    {
      file: "src/http/websocket.ts",
      find: "        this.#send(errorFrame(error, topic));\n      }\n    }\n    if (this.#ending) {",
      replace: "        done.push(topic);\n      }\n    }\n    if (this.#ending) {",
    },
  ],
  // The membership check itself is WatchTalk's (src/live/watch.ts), shared with every edge; the
  // matrix is the suite that holds the WebSocket to it for talks the caller is not in.
  suites: [{ file: "test/security/authz-matrix.test.ts", filter: "WebSocket" }],
});
