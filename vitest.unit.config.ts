import { defineConfig } from "vitest/config";

// The unit layer: pure and stateful modules with fakes, no database, no network, no
// processes. `npm run test:unit` runs it in seconds; `npm test` runs it with everything else.
// Files share one module graph per worker (no isolation: most of a file's cost would be
// re-importing it), except those that replace a module with vi.mock, which need their own.
const mocking = ["test/unit/token-remembering.test.ts"];

export default defineConfig({
  test: {
    testTimeout: 5_000,
    pool: "threads",
    projects: [
      { extends: true, test: { name: "unit", include: ["test/unit/**/*.test.ts"], exclude: mocking, isolate: false } },
      { extends: true, test: { name: "unit-mocks", include: mocking } },
    ],
  },
});
