import { breakage } from "../breakage.js";

export default breakage({
  behaviour: "Health Watch reports SERVING",
  breakage: "src/operator/health.ts: watch returns before sending its first status",
  edits: [{ file: "src/operator/health.ts", find: "if (now !== last) yield { status: now };", replace: "if (now !== last) return;" }],
  suites: [{ file: "test/ops/operator.test.ts", filter: "Watch sends SERVING" }],
});
