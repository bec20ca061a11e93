import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    // Prints a "NOT RUN:" line per suite skipped for a missing server, at the end of the run.
    globalSetup: ["test/support/not-run-summary.ts"],
  },
});
