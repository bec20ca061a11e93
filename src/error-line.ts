/** An error and its causes in one line ("migration x failed: relation y exists"), for operators. */
export function errorLine(error: unknown): string {
  const parts: string[] = [];
  for (let current: unknown = error; current !== undefined && parts.length < 5; ) {
    if (!(current instanceof Error)) {
      parts.push(String(current));
      break;
    }
    // pg reports a refused connection to several addresses as an AggregateError without a message.
    const inner = current instanceof AggregateError ? current.errors.map((e: unknown) => (e instanceof Error ? e.message : String(e))) : [];
    const text = current.message !== "" ? current.message : inner.join("; ") || current.name;
    // A cause its error's message already tells is not told twice.
    if (!parts.some((part) => part.includes(text))) parts.push(text);
    current = current.cause;
  }
  return parts.join(": ").replaceAll(/\s*\n\s*/g, " ");
}
