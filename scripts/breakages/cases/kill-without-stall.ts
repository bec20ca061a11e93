import { breakage } from "../breakage.js";

// A breakage of the test, not of the service: it shows that fault-kill's assertion "the kill
// landed between commits and their publishes" is not vacuous.
export default breakage({
  behaviour: "The kill lands between a commit and its publish",
  breakage: "test/faults/fault-kill.test.ts: the link to NATS is not stalled before the SIGKILL",
  edits: [{ file: "test/faults/fault-kill.test.ts", find: "link?.stall();", replace: "void link;" }],
  suites: [{ file: "test/faults/fault-kill.test.ts" }],
});
