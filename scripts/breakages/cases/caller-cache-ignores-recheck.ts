import { breakage } from "../breakage.js";

export default breakage({
  behaviour: "A deleted agent is shut out of other processes within the caller recheck interval",
  breakage: "src/domain/agents.ts: the caller cache keeps a caller for ever, ignoring its recheck interval",
  edits: [
    {
      file: "src/domain/agents.ts",
      find: "if (until !== undefined && until > now) return;",
      replace: "if (until !== undefined) return;",
    },
  ],
  suites: [{ file: "test/api/agents.test.ts", filter: "recheck interval" }],
});
