import { defineConfig } from "vitest/config";

/**
 * Suites that bound a latency, stop or stall a server, or race a timer. They run one file at a
 * time, after the rest, so that another suite's load cannot stretch the times they assert.
 */
const runAlone = [
  "test/live/**/*.test.ts",
  "test/faults/**/*.test.ts",
  "test/console/**/*.test.ts",
  "test/ops/data-dir-lock.test.ts",
  "test/ops/startup-failures.test.ts",
  "test/security/slow-connections.test.ts",
  "test/security/abuse-limits.test.ts",
  "test/security/stream-cancel.test.ts",
];

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    // Prints a "NOT RUN:" line per suite skipped for a missing server, at the end of the run.
    globalSetup: ["test/support/not-run-summary.ts"],
    projects: [
      {
        // Most suites wait on sockets and servers more than they compute: two files at a time
        // keep the machine's two cores busy and take about a third off the run.
        extends: true,
        test: {
          name: "shared",
          include: ["test/**/*.test.ts"],
          exclude: runAlone,
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: { name: "alone", include: runAlone, fileParallelism: false, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
