/**
 * Loaded into the server under test (`--expose-gc --import ./bench/gc-hook.ts`, see server.ts):
 * answers {op: "gc"} on the IPC channel with the process's memory right after a full
 * collection, so heap figures count live objects, not garbage a collection has not reached yet.
 */
interface GcRequest {
  readonly op: string;
  readonly id: number;
}

const collect = (globalThis as { gc?: () => void }).gc;
const send = process.send?.bind(process);
if (send !== undefined && collect !== undefined) {
  process.on("message", (request: GcRequest) => {
    if (request?.op !== "gc") return;
    // Twice: the first pass can leave objects that finalizers or weak callbacks release.
    collect();
    collect();
    const usage = process.memoryUsage();
    send({ op: "gc", id: request.id, heapUsed: usage.heapUsed, heapTotal: usage.heapTotal, rss: usage.rss });
  });
  // The channel must not keep the server alive when it is told to stop.
  process.channel?.unref();
}
