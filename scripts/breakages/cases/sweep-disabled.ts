import { breakage } from "../breakage.js";

export default breakage({
  behaviour: "Lost publishes are filled from the log",
  breakage: "src/live/talk-feeds.ts: the head sweep's timer does nothing",
  edits: [
    {
      file: "src/live/talk-feeds.ts",
      find: "this.#timer = setInterval(() => void this.sweep(), options.gapCheckMs);",
      replace: "this.#timer = setInterval(() => undefined, options.gapCheckMs);",
    },
  ],
  suites: [
    // The suite whose private NATS denies every publish: only the sweeps can deliver.
    { file: "test/live/bus-delivery.test.ts", filter: "bus cut" },
    { file: "test/live/live-watch.test.ts", filter: "gap fill" },
    { file: "test/faults/fault-kill.test.ts" },
  ],
});
