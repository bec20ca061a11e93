/**
 * The JSON of a REST call's request message: the body, then query parameters, then path fields
 * (which win). Request data never becomes the key of a plain object: query keys and path fields
 * descend only through fields of the message (see field-path.ts), the objects made here have no
 * prototype, and a key named `__proto__`, `constructor` or `prototype`, in the query or anywhere
 * in the body, is INVALID_ARGUMENT naming it.
 */
import { ScalarType, type DescField, type DescMessage, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { RestBinding } from "./bindings.js";
import { fieldNamed, fieldPath, isReservedKey } from "./field-path.js";

const emptyObject = (): JsonObject => Object.create(null) as JsonObject;

const isObject = (value: JsonValue | undefined): value is JsonObject =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** A key as it may appear in an error message: short, and quoted by JSON's rules. */
const shown = (key: string): string => JSON.stringify(key.length > 100 ? `${key.slice(0, 100)}...` : key);

/** The path of the first reserved key anywhere in a parsed body ("medias[0].constructor"). */
function reservedKeyIn(value: JsonValue): string | undefined {
  // A stack rather than recursion: a body's depth is bounded only by its size. Only objects
  // and arrays are stacked, so a long array of scalars costs no more than its parse.
  const isContainer = (item: JsonValue | undefined): item is JsonValue => typeof item === "object" && item !== null;
  const stack: { value: JsonValue; at: string }[] = [{ value, at: "" }];
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const { value: node, at } = next;
    if (Array.isArray(node)) {
      node.forEach((item, i) => {
        if (isContainer(item)) stack.push({ value: item, at: `${at}[${i}]` });
      });
    } else if (isObject(node)) {
      for (const key of Object.keys(node)) {
        const path = at === "" ? key : `${at}.${key}`;
        if (isReservedKey(key)) return path;
        const item = node[key];
        if (isContainer(item)) stack.push({ value: item, at: path });
      }
    }
  }
  return undefined;
}

function parseBody(bodyText: string): JsonValue {
  let parsed: JsonValue;
  try {
    parsed = JSON.parse(bodyText) as JsonValue;
  } catch {
    throw new ConnectError("the request body is not JSON", Code.InvalidArgument);
  }
  const reserved = reservedKeyIn(parsed);
  if (reserved !== undefined) throw new ConnectError(`the request body's key ${shown(reserved)} is not allowed`, Code.InvalidArgument);
  return parsed;
}

/** Sets the value at the end of a field path, making the message objects on the way. */
function setField(target: JsonObject, fields: readonly DescField[], value: JsonValue): void {
  let node = target;
  for (const field of fields.slice(0, -1)) {
    const next = Object.hasOwn(node, field.name) ? node[field.name] : undefined;
    if (isObject(next)) node = next;
    else {
      const created = emptyObject();
      node[field.name] = created;
      node = created;
    }
  }
  const last = fields[fields.length - 1];
  if (last !== undefined) node[last.name] = value;
}

/** A query parameter's value in the JSON type its field expects. */
function queryValue(field: DescField, values: string[]): JsonValue {
  // A repeated bool's items are bools too: the JSON reader takes no "true" string for either.
  const bool = (field.fieldKind === "scalar" || field.fieldKind === "list") && field.scalar === ScalarType.BOOL;
  const convert = (v: string): JsonValue => (bool ? v === "true" || v === "1" : v);
  return field.fieldKind === "list" ? values.map(convert) : convert(values[values.length - 1] ?? "");
}

/** Builds the request message's JSON; INVALID_ARGUMENT for a body or key it refuses. */
export function requestJson(
  binding: RestBinding,
  bodyText: string,
  query: URLSearchParams,
  pathFields: ReadonlyMap<string, string>,
): JsonObject {
  const input: DescMessage = binding.method.input;
  const json = emptyObject();
  // A DELETE without a body in its rule may still carry the request's fields in one, as clients
  // of the spec send {"emoji": ...} to remove a reaction; the path's fields still win.
  const body = binding.body === "" && binding.httpMethod === "DELETE" ? "*" : binding.body;
  if (body !== "" && bodyText.trim() !== "") {
    const parsed = parseBody(bodyText);
    if (body === "*") {
      if (!isObject(parsed)) throw new ConnectError("the request body must be a JSON object", Code.InvalidArgument);
      // A field the request does not have is refused, not dropped: the caller would believe it
      // was applied (medias on a message edit).
      const unknown = Object.keys(parsed).filter((key) => fieldNamed(input, key) === undefined);
      if (unknown.length > 0) {
        const known = input.fields.map((f) => f.name).join(", ");
        throw new ConnectError(
          `unknown field${unknown.length > 1 ? "s" : ""} ${unknown.map(shown).join(", ")} in the request body: this call takes ${known}`,
          Code.InvalidArgument,
        );
      }
      for (const key of Object.keys(parsed)) json[key] = parsed[key] ?? null;
    } else {
      json[body] = parsed;
    }
  }
  for (const key of new Set(query.keys())) {
    // Refused for every binding, also where the query is not read: such a key is never data.
    if (key.split(/[.[\]]/).some(isReservedKey))
      throw new ConnectError(`query parameter ${shown(key)} is not allowed`, Code.InvalidArgument);
    if (binding.body === "*" || key === "token") continue;
    // Parameters that name no field are ignored (cache busters, ?token=); a dotted one that
    // starts at a field must follow the message's fields to the end.
    if (fieldNamed(input, key.split(".")[0] ?? key) === undefined) continue;
    // An empty value (`?page_size=`) is the same as no parameter, as HTML forms send it.
    const values = query.getAll(key).filter((value) => value !== "");
    if (values.length === 0) continue;
    const fields = fieldPath(input, key);
    const last = fields?.[fields.length - 1];
    if (fields === undefined || last === undefined) {
      throw new ConnectError(`query parameter ${shown(key)} does not name a field of ${input.name}`, Code.InvalidArgument);
    }
    setField(json, fields, queryValue(last, values));
  }
  for (const [path, value] of pathFields) {
    // Path templates are checked against the schema when the bindings are built.
    const fields = fieldPath(input, path);
    if (fields === undefined) throw new Error(`path field ${path} is not a field of ${input.typeName}`);
    setField(json, fields, value);
  }
  return json;
}
