import { defineConfig } from "vitest/config";

// What Stryker runs against each mutant: the unit layer plus the integration suites (PGlite
// only) that the mutated modules need. The send path and domain rules need none: their unit
// tests fake the store. An integration suite added here must run on PGlite alone (the
// harness adds Postgres whenever it answers), or each mutant pays for both backends.
export default defineConfig({
  test: {
    include: ["test/unit/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
