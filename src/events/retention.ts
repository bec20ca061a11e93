/** Deletes events older than the retention period, a batch at a time, every few minutes. */
export function startRetention(options: {
  readonly retentionDays: number;
  readonly prune: (before: Date, limit: number) => Promise<number>;
  readonly onError: (error: unknown) => void;
  readonly everyMs?: number;
}): () => void {
  const batch = 10_000;
  let running = false;
  const run = async () => {
    if (running) return;
    running = true;
    try {
      const before = new Date(Date.now() - options.retentionDays * 24 * 3600 * 1000);
      while ((await options.prune(before, batch)) === batch);
    } catch (error) {
      options.onError(error);
    } finally {
      running = false;
    }
  };
  const timer = setInterval(() => void run(), options.everyMs ?? 10 * 60_000);
  timer.unref();
  void run();
  return () => clearInterval(timer);
}
