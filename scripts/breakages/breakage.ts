/**
 * A breakage: an edit that takes away one promised behaviour, and the suites that must fail
 * once it is applied. Each lives in cases/<name>.ts; `npm run test:breakages` applies it to a
 * scratch copy of the repository and runs the suites there (see run.ts).
 */

/** Replaces `find` by `replace` in `file`; `find` must occur exactly `count` times (default 1). */
export interface Edit {
  /** Path from the repository root. */
  readonly file: string;
  readonly find: string;
  readonly replace: string;
  readonly count?: number;
}

/** A suite that must fail with the breakage applied. */
export interface SuiteCheck {
  /** Test file from the repository root. */
  readonly file: string;
  /** vitest's -t: only the tests whose full name matches run, and one of them must fail. */
  readonly filter?: string;
  /** Bound on the whole vitest run (default 10 minutes). */
  readonly timeoutMs?: number;
}

export interface Breakage {
  /** The behaviour that is gone with the breakage applied. */
  readonly behaviour: string;
  /** What the edits do, in a sentence. */
  readonly breakage: string;
  readonly edits: readonly Edit[];
  readonly suites: readonly SuiteCheck[];
}

/** Identity, for type checking a case file's default export. */
export function breakage(b: Breakage): Breakage {
  return b;
}
