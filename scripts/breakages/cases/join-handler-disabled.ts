import { breakage } from "../breakage.js";

// live-feed runs with the membership re-check at 10 minutes, so only the bus join can follow.
export default breakage({
  behaviour: "A join while watching reaches the feed at once",
  breakage: "src/live/watch.ts: the subscribeAgent callback ignores the caller's participant_joined",
  edits: [
    {
      file: "src/live/watch.ts",
      find: "            void follow({ talkId: event.chatId, start: event.seq - 1 });",
      replace: "          void event;",
    },
  ],
  suites: [
    { file: "test/live/live-feed.test.ts", filter: "joins while watching|added back" },
    { file: "test/live/bus-delivery.test.ts", filter: "carried by the bus" },
  ],
});
