import { defineConfig } from "vitest/config";

// What Stryker runs against each mutant: the unit layer plus the integration suites (PGlite
// only) that the mutated modules need.
export default defineConfig({
  test: {
    include: ["test/unit/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
