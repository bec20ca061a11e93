import { breakage } from "../breakage.js";

export default breakage({
  behaviour: "An allowed write has its effect",
  breakage: "src/domain/talks.ts: updateTalk keeps the old name (and still answers OK)",
  edits: [
    {
      file: "src/domain/talks.ts",
      find: "const talk = change.updateTalk({ name: name ?? change.talk.name, detail: detail ?? change.talk.detail });",
      replace: "const talk = change.updateTalk({ name: change.talk.name, detail: detail ?? change.talk.detail });",
    },
  ],
  suites: [{ file: "test/security/authz-matrix.test.ts" }],
});
