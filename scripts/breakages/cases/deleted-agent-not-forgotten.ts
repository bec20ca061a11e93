import { breakage } from "../breakage.js";

export default breakage({
  behaviour: "A deleted agent is shut out of the process that deleted it at once",
  breakage: "src/domain/agents.ts: deleteAgent no longer calls callers.forget",
  edits: [{ file: "src/domain/agents.ts", find: "  callers.forget(deleted.id);", replace: "  void callers;" }],
  suites: [{ file: "test/api/agents.test.ts", filter: "recheck interval" }],
});
