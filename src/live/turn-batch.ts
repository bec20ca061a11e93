/**
 * Coalesces the reads of concurrently opening streams: keys asked for during one turn of the
 * event loop are read together, one query per turn (and per `maxKeys`), when the turn's I/O has
 * been handled. 10,000 streams opening at once then cost a few dozen queries, not 10,000, and
 * none of them waits for a pooled connection behind the others.
 */
export class TurnBatch<K, V> {
  #pending: { key: K; resolve: (value: V) => void; reject: (error: unknown) => void }[] = [];
  #scheduled = false;

  constructor(
    /** Reads the values of some keys, in the keys' order. */
    private readonly read: (keys: readonly K[]) => Promise<readonly V[]>,
    private readonly maxKeys = 1_000,
  ) {}

  get(key: K): Promise<V> {
    return new Promise<V>((resolve, reject) => {
      this.#pending.push({ key, resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  #flush(): void {
    this.#scheduled = false;
    const pending = this.#pending;
    this.#pending = [];
    for (let i = 0; i < pending.length; i += this.maxKeys) {
      const chunk = pending.slice(i, i + this.maxKeys);
      this.read(chunk.map((p) => p.key)).then(
        (values) => chunk.forEach((p, j) => p.resolve(values[j] as V)),
        (error: unknown) => chunk.forEach((p) => p.reject(error)),
      );
    }
  }
}
