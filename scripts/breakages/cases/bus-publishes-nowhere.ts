import { breakage } from "../breakage.js";

// The suites run with the log sweeps slowed to 10 minutes, so only the bus can meet their bounds.
export default breakage({
  behaviour: "Delivery across processes comes over the bus",
  breakage: "src/bus/nats-bus.ts publishes every event (talk and agent subjects) to nowhere.<subject>",
  edits: [
    {
      file: "src/bus/nats-bus.ts",
      find: "this.nc.publish(this.#subjects.talk(event.customerId, event.chatId), data);",
      replace: "this.nc.publish(`nowhere.${this.#subjects.talk(event.customerId, event.chatId)}`, data);",
    },
    {
      file: "src/bus/nats-bus.ts",
      find: "this.nc.publish(this.#subjects.agent(event.customerId, agent), data);",
      replace: "this.nc.publish(`nowhere.${this.#subjects.agent(event.customerId, agent)}`, data);",
    },
  ],
  suites: [
    { file: "test/live/bus-delivery.test.ts", filter: "carried by the bus" },
    { file: "test/live/multi-process.test.ts" },
    { file: "test/live/live-watch.test.ts", filter: "WatchTalk on postgres" },
  ],
});
