/**
 * Dotted field paths ("talk.id") resolved through a message's schema. Request data reaches the
 * request JSON only along such paths, so a key from outside never indexes an object by itself.
 */
import type { DescField, DescMessage } from "@bufbuild/protobuf";

/** Keys that reach an object's prototype when used as a property name. */
const reservedKeys: ReadonlySet<string> = new Set(["__proto__", "constructor", "prototype"]);

/** Whether a key names a prototype rather than data (`__proto__`, `constructor`, `prototype`). */
export function isReservedKey(key: string): boolean {
  return reservedKeys.has(key);
}

/** The field of a message named by its proto name or its JSON name. */
export function fieldNamed(message: DescMessage, name: string): DescField | undefined {
  return message.fields.find((f) => f.name === name || f.jsonName === name);
}

/**
 * The fields along a dotted path, or undefined when the path leaves the schema: every segment
 * but the last must name a singular message field, the last any field of the message reached.
 */
export function fieldPath(message: DescMessage, path: string): DescField[] | undefined {
  const fields: DescField[] = [];
  let current: DescMessage | undefined = message;
  for (const segment of path.split(".")) {
    if (current === undefined) return undefined;
    const field = fieldNamed(current, segment);
    if (field === undefined) return undefined;
    fields.push(field);
    current = field.fieldKind === "message" ? field.message : undefined;
  }
  return fields;
}
