/**
 * The body of a live response (WatchTalk, WatchEvents): a stream that pushes its items to the
 * transport as they come instead of being pulled through a chain of async generators.
 *
 * The gRPC binary path (http/grpc-direct.ts) runs the body with `runFrames`: each item becomes
 * its frame (enveloped bytes, shared by every stream that sends the same event, see the encoding
 * given by the RPC layer) and is written to the socket at once. Every other consumer (Connect and
 * gRPC-Web through connect-node's pipeline, which encodes per stream; the WebSocket; REST NDJSON)
 * iterates it as an AsyncIterable of messages.
 *
 * Work around the call that must happen once per stream (metrics, logs, error mapping) is
 * hooked on its end with `onEnd`, not wrapped around every item.
 */

/** Where a producer sends its items: false when the consumer's buffer is full. */
export interface Outlet<I> {
  send(item: I): boolean;
  /** Called once the consumer can take more after `send` answered false. */
  onWritable(listener: () => void): void;
}

/**
 * Runs a stream into an outlet: resolves when the stream ends by itself (never, for a watch)
 * and rejects with the reason it ended (a DomainError) otherwise. Nothing is taken before it
 * is called, and everything is given back by the time it settles. `stop` aborts when the
 * consumer stops pulling (an iterating consumer's return()).
 */
export type Producer<I> = (outlet: Outlet<I>, stop: AbortSignal) => Promise<void>;

/** What a body's items become: a message for iterating consumers, bytes for byte transports. */
export interface Encoding<I, R> {
  message(item: I): R;
  frame(item: I): Uint8Array;
}

/** A byte transport: writes a frame, false when its buffer is full (it then says when it drains). */
export interface FrameSink {
  write(frame: Uint8Array): boolean;
  onDrain(listener: () => void): void;
}

/** Maps the stream's end (the error, or undefined for a clean end) to what goes on. */
export type EndHook = (error: unknown) => unknown;

export class LiveBody<R> implements AsyncIterable<R> {
  readonly #hooks: EndHook[] = [];
  #started = false;

  private constructor(
    private readonly runItems: (outlet: Outlet<R>, stop: AbortSignal) => Promise<void>,
    private readonly runSink: (sink: FrameSink, stop: AbortSignal) => Promise<void>,
  ) {}

  static of<I, R>(produce: Producer<I>, encoding: Encoding<I, R>): LiveBody<R> {
    return new LiveBody<R>(
      (outlet, stop) =>
        produce(
          {
            send: (item) => outlet.send(encoding.message(item)),
            onWritable: (listener) => outlet.onWritable(listener),
          },
          stop,
        ),
      (sink, stop) =>
        produce(
          {
            send: (item) => sink.write(encoding.frame(item)),
            onWritable: (listener) => sink.onDrain(listener),
          },
          stop,
        ),
    );
  }

  /**
   * Adds work for the stream's end: hooks run in the order added (the innermost interceptor
   * first), each given the error so far (undefined for a clean end) and returning the next.
   */
  onEnd(hook: EndHook): void {
    this.#hooks.push(hook);
  }

  /** Writes the stream's frames to a byte transport until it ends; rejects with its mapped end. */
  runFrames(sink: FrameSink): Promise<void> {
    return this.#settle(() => this.runSink(sink, new AbortController().signal));
  }

  async #settle(run: () => Promise<void>): Promise<void> {
    if (this.#started) throw new Error("a live body runs once");
    this.#started = true;
    let error: unknown;
    try {
      await run();
    } catch (thrown) {
      error = thrown ?? new Error("the stream failed");
    }
    for (const hook of this.#hooks) error = hook(error);
    if (error !== undefined) throw error;
  }

  /** The messages, for consumers that pull; at most one message waits on the consumer. */
  [Symbol.asyncIterator](): AsyncIterator<R> {
    const buffered: R[] = [];
    let writable: (() => void) | undefined;
    let full = false;
    let wake: (() => void) | undefined;
    let done = false;
    let failure: { error: unknown } | undefined;
    const stop = new AbortController();
    const settled = this.#settle(() =>
      this.runItems(
        {
          send: (item) => {
            buffered.push(item);
            wake?.();
            full = buffered.length > 1;
            return !full;
          },
          onWritable: (listener) => (writable = listener),
        },
        stop.signal,
      ),
    ).then(
      () => (done = true),
      (error: unknown) => (failure = { error }),
    );
    void settled.finally(() => wake?.());
    return {
      next: async (): Promise<IteratorResult<R>> => {
        for (;;) {
          const item = buffered.shift();
          if (item !== undefined) {
            if (full && buffered.length === 0) {
              full = false;
              writable?.();
            }
            return { value: item, done: false };
          }
          if (failure !== undefined) throw failure.error;
          if (done) return { value: undefined, done: true };
          await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
        }
      },
      // A consumer that stops pulling ends the stream, as a generator's return() runs its finally.
      return: async (): Promise<IteratorResult<R>> => {
        stop.abort();
        await settled;
        return { value: undefined, done: true };
      },
    };
  }
}
