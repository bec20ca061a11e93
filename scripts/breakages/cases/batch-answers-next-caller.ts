import { breakage } from "../breakage.js";

export default breakage({
  behaviour: "Each caller of a group commit gets its own message",
  breakage: "src/sends/send-batcher.ts: each settled caller of a batch is resolved with the next caller's message",
  edits: [
    {
      file: "src/sends/send-batcher.ts",
      find: [
        "      for (const [p, result] of attempt.settled) {",
        "        if (result instanceof Error) p.reject(result);",
        "        else p.resolve(result);",
        "      }",
      ].join("\n"),
      replace: [
        "      attempt.settled.forEach(([p, result], i, all) => {",
        "        const next = all[(i + 1) % all.length]?.[1] ?? result;",
        "        if (result instanceof Error) p.reject(result);",
        "        else p.resolve(next instanceof Error ? result : next);",
        "      });",
      ].join("\n"),
    },
  ],
  suites: [
    { file: "test/api/send-batching.test.ts", filter: "its own message" },
    { file: "test/faults/fault-kill.test.ts" },
    { file: "test/faults/fault-postgres.test.ts", filter: "loses and duplicates nothing" },
  ],
});
