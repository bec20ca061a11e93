import { pino, type Logger } from "pino";

export type { Logger };

/** JSON lines on stdout. Request logs carry method, code, duration and request id: never a token or message text. */
export function createLogger(level: string): Logger {
  return pino({ level, base: { service: "talkhub" }, timestamp: pino.stdTimeFunctions.isoTime });
}
