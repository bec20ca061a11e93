// Mutation testing (`npm run test:mutation`): Stryker changes one thing at a time in the
// modules whose mistakes cost the most and checks that some test fails. It runs the unit layer
// (test/unit/) plus the few integration suites listed in vitest.mutation.config.ts, and keeps
// its results between runs (incremental) so a re-run only tests what changed.
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: "vitest",
  plugins: ["@stryker-mutator/vitest-runner"],
  vitest: { configFile: "vitest.mutation.config.ts" },
  coverageAnalysis: "perTest",
  mutate: [
    // modules are added per area (send path, live delivery, token verifier, REST transcoder,
    // domain rules); docs/testing.md has the score of each

    // --- send path and domain rules (tests: test/unit/send-*, known-talks, domain-*) ---
    "src/domain/send-batcher.ts",
    "src/domain/known-talks.ts",
    "src/domain/draft-message.ts",
    "src/domain/validate.ts",
    "src/domain/page-token.ts",
    "src/domain/talk-change.ts",
    "src/domain/visible-history.ts",
    "src/domain/pair-key.ts",
    "src/domain/write-limits.ts",
    "src/domain/stream-quota.ts",
    // --- end send path and domain rules ---
  ],
  incremental: true,
  incrementalFile: "reports/mutation/incremental.json",
  reporters: ["clear-text", "progress", "json", "html"],
  jsonReporter: { fileName: "reports/mutation/mutation.json" },
  htmlReporter: { fileName: "reports/mutation/index.html" },
  concurrency: 1,
  timeoutMS: 10_000,
  thresholds: { high: 90, low: 80, break: null },
  tempDirName: ".stryker-tmp",
  ignorePatterns: ["web/dist", "test-artifacts", "bench/results", "reports", ".talkhub"],
};
