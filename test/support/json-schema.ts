/**
 * Checks a JSON value against a schema of the OpenAPI document (gen/openapi.json), with its
 * local $refs. It knows the keywords src/contract/openapi.ts writes and throws on any other, so
 * a schema it cannot judge fails the test instead of passing it. Returns the problems found,
 * each with the JSON path of the value ("$.metadata.reactions[0].tm_create: ...").
 */
type Schema = { readonly [key: string]: unknown };

const known = new Set([
  "$ref",
  "type",
  "properties",
  "required",
  "additionalProperties",
  "items",
  "enum",
  "oneOf",
  "format",
  "pattern",
  "minimum",
  "contentEncoding",
  "description",
]);

const rfc3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

function typeOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value;
}

export function schemaProblems(document: Schema, schema: Schema, value: unknown, at = "$"): string[] {
  for (const key of Object.keys(schema)) if (!known.has(key)) throw new Error(`${at}: the checker does not know the schema keyword ${key}`);
  const ref = schema["$ref"];
  if (typeof ref === "string") {
    const target = ref
      .replace(/^#\//, "")
      .split("/")
      .reduce<unknown>((node, part) => (node as Schema | undefined)?.[part], document);
    if (target === undefined) throw new Error(`${at}: unresolved $ref ${ref}`);
    return schemaProblems(document, target as Schema, value, at);
  }
  const oneOf = schema["oneOf"];
  if (Array.isArray(oneOf)) {
    const matching = (oneOf as Schema[]).filter((s) => schemaProblems(document, s, value, at).length === 0).length;
    return matching === 1 ? [] : [`${at}: matches ${matching} of the oneOf schemas, not exactly one`];
  }
  const problems: string[] = [];
  const type = schema["type"];
  const actual = typeOf(value);
  if (typeof type === "string" && actual !== type && !(type === "number" && actual === "integer")) return [`${at}: ${actual}, not ${type}`];
  const enumValues = schema["enum"];
  if (Array.isArray(enumValues) && !enumValues.includes(value))
    problems.push(`${at}: ${JSON.stringify(value)} is not one of ${enumValues.join(", ")}`);
  if (typeof value === "string") {
    const pattern = schema["pattern"];
    if (typeof pattern === "string" && !new RegExp(pattern, "u").test(value))
      problems.push(`${at}: ${JSON.stringify(value)} does not match ${pattern}`);
    if (schema["format"] === "date-time" && !(rfc3339.test(value) && !Number.isNaN(Date.parse(value))))
      problems.push(`${at}: ${JSON.stringify(value)} is not an RFC 3339 date-time`);
  }
  if (typeof value === "number" && typeof schema["minimum"] === "number" && value < schema["minimum"])
    problems.push(`${at}: ${value} < ${schema["minimum"]}`);
  if (Array.isArray(value) && schema["items"] !== undefined) {
    value.forEach((item, i) => problems.push(...schemaProblems(document, schema["items"] as Schema, item, `${at}[${i}]`)));
  }
  if (actual === "object") {
    const object = value as Record<string, unknown>;
    const properties = (schema["properties"] ?? {}) as Record<string, Schema>;
    for (const name of (schema["required"] ?? []) as string[]) if (!(name in object)) problems.push(`${at}: ${name} is missing`);
    for (const [name, item] of Object.entries(object)) {
      const property = properties[name];
      if (property !== undefined) problems.push(...schemaProblems(document, property, item, `${at}.${name}`));
      else if (schema["additionalProperties"] === false) problems.push(`${at}: ${name} is not in the schema`);
      else if (typeof schema["additionalProperties"] === "object")
        problems.push(...schemaProblems(document, schema["additionalProperties"] as Schema, item, `${at}.${name}`));
    }
  }
  return problems;
}
