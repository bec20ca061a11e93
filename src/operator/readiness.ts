/** Whether this process can serve: its database answers and its bus is connected. */
export interface ReadinessChecks {
  readonly database: () => Promise<void>;
  readonly busConnected: () => boolean;
}

export interface Readiness {
  readonly ready: boolean;
  readonly database: "ok" | "unreachable";
  readonly bus: "ok" | "disconnected";
}

/** Checks readiness; the database check gives up after timeoutMs. */
export async function checkReadiness(checks: ReadinessChecks, timeoutMs = 2_000): Promise<Readiness> {
  let timer: NodeJS.Timeout | undefined;
  const database = await Promise.race([
    checks.database().then(() => "ok" as const),
    new Promise<"unreachable">((resolve) => {
      timer = setTimeout(() => resolve("unreachable"), timeoutMs);
    }),
  ]).catch(() => "unreachable" as const);
  clearTimeout(timer);
  const bus = checks.busConnected() ? "ok" : "disconnected";
  return { ready: database === "ok" && bus === "ok", database, bus };
}
