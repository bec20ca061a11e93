import { defineConfig } from "vitest/config";

// The unit layer: pure and stateful modules with fakes, no database, no network, no
// processes. `npm run test:unit` runs it in seconds; `npm test` runs it with everything else.
export default defineConfig({
  test: {
    include: ["test/unit/**/*.test.ts"],
    testTimeout: 5_000,
    pool: "threads",
  },
});
