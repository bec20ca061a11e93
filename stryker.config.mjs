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
    // docs/testing.md has the score of each module and the reasons its survivors live
    // --- live delivery, token verifier, REST transcoder (tests: test/unit/live-*, token-*, rest-*) ---
    "src/live/talk-feeds.ts",
    "src/live/event-stream.ts",
    "src/bus/local-bus.ts",
    "src/events/limited-log.ts",
    "src/live/feed-cursor.ts",
    "src/live/watch-scope.ts",
    "src/auth/verifier.ts",
    "src/auth/bearer.ts",
    "src/http/bearer-token.ts",
    "src/auth/tokens.ts",
    "src/http/rest/transcoder.ts",
    "src/http/rest/bindings.ts",
    "src/http/rest/path-template.ts",
    "src/http/rest/request-json.ts",
    "src/http/rest/field-path.ts",
    "src/live/live-body.ts",
    "src/live/turn-batch.ts",
    "src/rpc/talks/live-frames.ts",
    "src/http/websocket-protocol.ts",
    "src/http/rest/spec-dialect.ts",
    "src/http/grpc-web-text.ts",
    "src/rpc/errors.ts",
    // --- end live delivery, token verifier, REST transcoder ---
    // --- send path and domain rules (tests: test/unit/send-*, known-talks, domain-*) ---
    "src/sends/send-batcher.ts",
    "src/sends/known-talks.ts",
    "src/sends/plan-batch.ts",
    "src/sends/judge-send.ts",
    "src/domain/write/draft-message.ts",
    "src/domain/model/validate.ts",
    "src/domain/model/page-token.ts",
    "src/domain/write/talk-change.ts",
    "src/domain/model/visible-history.ts",
    "src/domain/model/pair-key.ts",
    "src/domain/write/write-limits.ts",
    "src/domain/stream-quota.ts",
    // --- end send path and domain rules ---
  ],
  incremental: true,
  incrementalFile: "reports/mutation/incremental.json",
  reporters: ["clear-text", "progress", "json", "html"],
  jsonReporter: { fileName: "reports/mutation/mutation.json" },
  htmlReporter: { fileName: "reports/mutation/index.html" },
  concurrency: 2,
  // A mutant that hangs a pump costs its timeout and a runner restart; 5 s over the test's
  // own time is ample for tests that take milliseconds.
  timeoutMS: 5_000,
  // Mutants in module-level constants would need every test re-run for each; their values are
  // pinned by the tests that use them.
  ignoreStatic: true,
  thresholds: { high: 90, low: 80, break: null },
  tempDirName: ".stryker-tmp",
  ignorePatterns: ["web/dist", "test-artifacts", "bench/results", "reports", ".talkhub"],
};
