/**
 * Which errors end a resumable stream. Everything else (a dropped connection, UNAVAILABLE from
 * a process shutting down, RESOURCE_EXHAUSTED for a reader that fell behind, a stream that went
 * silent or ended without an error) is a reason to reconnect and resume.
 */
import { Code } from "@connectrpc/connect";

/**
 * The answers that reconnecting cannot change: the caller left the talk or may not watch it
 * (PERMISSION_DENIED), the talk is gone (NOT_FOUND), the request or resume position is wrong
 * (INVALID_ARGUMENT, OUT_OF_RANGE: re-sync with a list call and watch again from its state),
 * or the URL serves no Talkhub (UNIMPLEMENTED). UNAUTHENTICATED is terminal once a token
 * refresh was tried (see resumable-stream.ts).
 */
export const terminalCodes: ReadonlySet<Code> = new Set([
  Code.PermissionDenied,
  Code.NotFound,
  Code.InvalidArgument,
  Code.OutOfRange,
  Code.Unimplemented,
  Code.Unauthenticated,
]);

export const isTerminal = (code: Code): boolean => terminalCodes.has(code);
