import { breakage } from "../breakage.js";

// A breakage of the matrix itself: an RPC the router serves that nobody classified (as a new
// RPC would be) must fail the matrix, not go unchecked.
export default breakage({
  behaviour: "Every served RPC is classified in the authorization matrix",
  breakage: "test/security/authz-matrix.test.ts: the MessageService.RemoveReaction row is deleted",
  edits: [
    {
      file: "test/security/authz-matrix.test.ts",
      find: [
        '  "MessageService.RemoveReaction": {',
        "    who: talkRow,",
        "    effect: deleted(",
        '      "reactions",',
        '      "the caller\'s thumbsup",',
        '      (r, c) => r["message_id"] === c.s.messageId && r["emoji"] === "thumbsup" && r["owner_id"] === c.caller.id,',
        "    ),",
        "  },",
        "",
      ].join("\n"),
      replace: "",
    },
  ],
  suites: [{ file: "test/security/authz-matrix.test.ts" }],
});
