import { breakage } from "../breakage.js";

export default breakage({
  behaviour: "A remembered token still expires",
  breakage: "src/auth/verifier.ts returns a remembered identity without checking expiresAt",
  edits: [
    {
      file: "src/auth/verifier.ts",
      find: "if (hit !== undefined && hit.expiresAt > Date.now()) return hit;",
      replace: "if (hit !== undefined) return hit;",
    },
  ],
  suites: [{ file: "test/security/auth.test.ts", filter: "exp has passed" }],
});
