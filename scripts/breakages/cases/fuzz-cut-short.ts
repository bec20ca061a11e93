import { breakage } from "../breakage.js";

// A breakage of the fuzz harness: a property stopped by a time limit must fail, not pass.
export default breakage({
  behaviour: "A fuzz property runs all its runs",
  breakage: "test/security/fuzz.test.ts: every property is interrupted after 1 ms (fast-check's interruptAfterTimeLimit)",
  edits: [{ file: "test/security/fuzz.test.ts", find: "      { numRuns },", replace: "      { numRuns, interruptAfterTimeLimit: 1 }," }],
  suites: [{ file: "test/security/fuzz.test.ts", filter: "Connect GET" }],
});
