/**
 * The spec's JSON dialect (talk-api-reference), spoken on the /v1.0 REST paths and the /v1.0/ws
 * WebSocket; gRPC and Connect keep proto3 JSON. From proto3 JSON (proto field names, every
 * implicit field present) it differs only where the spec's examples show otherwise:
 *  - every timestamp is "2024-01-17 10:30:00.000000": UTC, a space, six fraction digits;
 *  - an unset timestamp is "" (tm_delete of a live talk or message), not left out;
 *  - 64-bit integers (seq, last_seq) are JSON numbers, not strings;
 *  - a message's parent_id is left out when empty, as the spec's top-level messages show it.
 * docs/api.md lists the mapping and what still differs from the spec.
 */
import {
  ScalarType,
  toJson,
  type DescField,
  type DescMessage,
  type JsonObject,
  type JsonValue,
  type MessageShape,
} from "@bufbuild/protobuf";

const protoJson = { useProtoFieldName: true, alwaysEmitImplicit: true } as const;
const timestampType = "google.protobuf.Timestamp";
const int64Types: ReadonlySet<ScalarType> = new Set([
  ScalarType.INT64,
  ScalarType.UINT64,
  ScalarType.SINT64,
  ScalarType.FIXED64,
  ScalarType.SFIXED64,
]);
/** Fields the spec's examples leave out when they are empty ("<message type>.<field>"). */
export const omittedWhenEmpty: ReadonlySet<string> = new Set(["talk.v1.Message.parent_id"]);

const rfc3339 = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?Z$/;
/** A timestamp as the spec writes it. */
export const specTime = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})\.(\d{6})$/;

/** "2024-01-17T10:30:00.5Z" (proto JSON, always UTC) as "2024-01-17 10:30:00.500000". */
export function toSpecTime(value: string): string {
  const match = rfc3339.exec(value);
  if (match === null) throw new Error(`not a proto JSON timestamp: ${value}`);
  const [, date, time, fraction = ""] = match;
  // Truncated to microseconds: the store keeps no finer time.
  return `${date} ${time}.${fraction.padEnd(6, "0").slice(0, 6)}`;
}

const isObject = (value: JsonValue | undefined): value is JsonObject =>
  typeof value === "object" && value !== null && !Array.isArray(value);
/** A message whose JSON is written field by field (not a well-known type with a JSON form of its own, such as Struct or Value). */
const isPlain = (schema: DescMessage, value: JsonValue | undefined): value is JsonObject =>
  isObject(value) && !schema.typeName.startsWith("google.protobuf.");

/** One field's proto JSON value in the dialect; undefined leaves the field out. */
function specValue(field: DescField, value: JsonValue | undefined): JsonValue | undefined {
  switch (field.fieldKind) {
    case "message":
      if (field.message.typeName === timestampType) return typeof value === "string" ? toSpecTime(value) : "";
      return isPlain(field.message, value) ? specObject(field.message, value) : value;
    case "list":
      if (!Array.isArray(value)) return value;
      if (field.listKind === "message") {
        const item = field.message;
        return value.map((v) =>
          item.typeName === timestampType && typeof v === "string" ? toSpecTime(v) : isPlain(item, v) ? specObject(item, v) : v,
        );
      }
      return field.listKind === "scalar" && int64Types.has(field.scalar) ? value.map(int64Number) : value;
    case "scalar":
      if (value === "" && omittedWhenEmpty.has(`${field.parent.typeName}.${field.name}`)) return undefined;
      return value !== undefined && int64Types.has(field.scalar) ? int64Number(value) : value;
    default:
      return value;
  }
}

/** A proto JSON int64 (a string) as a number when it is one exactly. */
function int64Number(value: JsonValue): JsonValue {
  if (typeof value !== "string") return value;
  const number = Number(value);
  return Number.isSafeInteger(number) ? number : value;
}

function specObject(schema: DescMessage, json: JsonObject): JsonObject {
  const out: JsonObject = {};
  for (const field of schema.fields) {
    const value = specValue(field, json[field.name]);
    if (value !== undefined) out[field.name] = value;
  }
  return out;
}

/** A message as the spec writes it. */
export function toSpecJson<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): JsonObject {
  return specObject(schema, toJson(schema, message, protoJson) as JsonObject);
}

/**
 * A request's JSON as proto JSON reads it: a timestamp in the spec's form becomes RFC 3339 and
 * "" an unset one; everything else the proto JSON reader already takes (numbers for int64, an
 * empty parent_id). Walks only fields of the request message; anything else is left for the
 * reader to refuse.
 */
export function fromSpecJson(schema: DescMessage, json: JsonObject): JsonObject {
  for (const field of schema.fields) {
    const key = Object.hasOwn(json, field.name) ? field.name : Object.hasOwn(json, field.jsonName) ? field.jsonName : undefined;
    if (key === undefined) continue;
    const value = json[key];
    if (field.fieldKind === "message" && field.message.typeName === timestampType) {
      if (value === "") delete json[key];
      else if (typeof value === "string") json[key] = fromSpecTime(value);
    } else if (field.fieldKind === "message" && isObject(value)) {
      fromSpecJson(field.message, value);
    } else if (field.fieldKind === "list" && field.listKind === "message" && Array.isArray(value)) {
      for (const item of value) if (isObject(item)) fromSpecJson(field.message, item);
    }
  }
  return json;
}

/** "2024-01-17 10:30:00.000000" (UTC) as RFC 3339; any other text is left for the reader to judge. */
export function fromSpecTime(value: string): string {
  const match = specTime.exec(value);
  return match === null ? value : `${match[1]}T${match[2]}.${match[3]}Z`;
}
