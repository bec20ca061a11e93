/**
 * The OpenAPI 3.1 document of the REST paths: one operation per google.api.http binding (the
 * same bindings the REST transcoder serves, src/http/rest/bindings.ts), with the JSON the
 * transcoder reads and writes in the spec's dialect (src/http/rest/spec-dialect.ts): proto
 * field names; int64 as JSON numbers in answers (numbers or decimal strings in requests);
 * Timestamps as "2024-01-17 10:30:00.000000" in UTC, "" when unset; every implicit field and
 * every timestamp present in answers (so `required`), other unset message fields absent. Descriptions are the protos' comments. `npm run generate` writes it to
 * gen/openapi.json; the service serves that file at /v1.0/openapi.json.
 */
import { ScalarType, type DescEnum, type DescField, type DescMessage, type DescService } from "@bufbuild/protobuf";
import { FeatureSet_FieldPresence } from "@bufbuild/protobuf/wkt";
import { restBindings, type RestBinding } from "../http/rest/bindings.js";
import { omittedWhenEmpty, specTime } from "../http/rest/spec-dialect.js";
import { commentOf } from "./proto-comments.js";

export type JsonSchema = { readonly [key: string]: unknown };

const int64Pattern = "^-?[0-9]+$";
const uint64Pattern = "^[0-9]+$";

type Mode = "request" | "response";

function scalarSchema(scalar: ScalarType, mode: Mode): JsonSchema {
  switch (scalar) {
    case ScalarType.STRING:
      return { type: "string" };
    case ScalarType.BOOL:
      return { type: "boolean" };
    case ScalarType.BYTES:
      return { type: "string", contentEncoding: "base64" };
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return { type: "number" };
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return { type: "integer", format: "int32" };
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return { type: "integer", minimum: 0, format: "int32" };
    // The spec writes 64-bit integers (seq, last_seq) as numbers; requests may give either form,
    // as proto JSON reads them.
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return mode === "response"
        ? { type: "integer", format: "int64" }
        : { type: ["integer", "string"], pattern: int64Pattern, format: "int64" };
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return mode === "response"
        ? { type: "integer", minimum: 0, format: "int64" }
        : { type: ["integer", "string"], minimum: 0, pattern: uint64Pattern, format: "int64" };
  }
}

function enumSchema(desc: DescEnum): JsonSchema {
  return { type: "string", enum: desc.values.map((v) => v.name) };
}

const described = (schema: JsonSchema, description: string): JsonSchema => (description === "" ? schema : { ...schema, description });

/** Builds schemas of messages: answers as shared components, request bodies inline. */
class Schemas {
  readonly components = new Map<string, JsonSchema>();

  /** A message as the service writes it: a $ref to its component (made on first use). */
  response(message: DescMessage): JsonSchema {
    const wellKnown = wellKnownSchema(message, "response");
    if (wellKnown !== undefined) return wellKnown;
    if (!this.components.has(message.typeName)) {
      this.components.set(message.typeName, {}); // a placeholder: messages may refer to each other
      this.components.set(message.typeName, this.object(message, "response", new Set()));
    }
    return { $ref: `#/components/schemas/${message.typeName}` };
  }

  /** A message as the service reads it: every field optional, unknown fields refused. */
  request(message: DescMessage, without: ReadonlySet<string> = new Set()): JsonSchema {
    return wellKnownSchema(message, "request") ?? this.object(message, "request", without);
  }

  private object(message: DescMessage, mode: Mode, without: ReadonlySet<string>): JsonSchema {
    const properties: Record<string, JsonSchema> = {};
    const required: string[] = [];
    for (const field of message.fields) {
      if (without.has(field.name)) continue;
      properties[field.name] = described(this.field(field, mode), fieldDescription(field));
      // The transcoder writes implicit fields (empty ones too, but for the few the spec leaves
      // out when empty), lists and timestamps ("" when unset) always; other messages,
      // `optional` fields and oneof members only when set.
      const timestamp = field.fieldKind === "message" && field.message.typeName === timestampType;
      const implicit = field.oneof === undefined && field.presence === FeatureSet_FieldPresence.IMPLICIT;
      const omittable = omittedWhenEmpty.has(`${message.typeName}.${field.name}`);
      if (mode === "response" && !omittable && (field.fieldKind === "list" || field.fieldKind === "map" || timestamp || implicit)) {
        required.push(field.name);
      }
    }
    const schema: Record<string, unknown> = { type: "object", properties, additionalProperties: false };
    if (required.length > 0) schema["required"] = required;
    return described(schema, commentOf(message));
  }

  private field(field: DescField, mode: Mode): JsonSchema {
    const message = (m: DescMessage): JsonSchema => (mode === "response" ? this.response(m) : this.request(m));
    switch (field.fieldKind) {
      case "scalar":
        return scalarSchema(field.scalar, mode);
      case "enum":
        return enumSchema(field.enum);
      case "message":
        return message(field.message);
      case "list":
        return {
          type: "array",
          items:
            field.listKind === "scalar"
              ? scalarSchema(field.scalar, mode)
              : field.listKind === "enum"
                ? enumSchema(field.enum)
                : message(field.message),
        };
      case "map":
        return {
          type: "object",
          additionalProperties:
            field.mapKind === "scalar"
              ? scalarSchema(field.scalar, mode)
              : field.mapKind === "enum"
                ? enumSchema(field.enum)
                : message(field.message),
        };
    }
  }
}

const timestampType = "google.protobuf.Timestamp";

function wellKnownSchema(message: DescMessage, mode: Mode): JsonSchema | undefined {
  if (message.typeName === timestampType) {
    // Answers: the spec's form, "" when unset. Requests: that form or RFC 3339.
    const spec = specTime.source;
    return mode === "response"
      ? { type: "string", pattern: `${spec}|^$`, description: 'UTC, "2024-01-17 10:30:00.000000"; "" when unset' }
      : { type: "string", pattern: `${spec}|^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,9})?Z$|^$` };
  }
  if (message.typeName.startsWith("google.protobuf."))
    throw new Error(`no JSON schema for ${message.typeName}: add it to src/contract/openapi.ts`);
  return undefined;
}

function fieldDescription(field: DescField): string {
  const comment = commentOf(field);
  if (field.oneof === undefined) return comment;
  const others = field.oneof.fields.filter((f) => f !== field).map((f) => f.name);
  return `${comment}${comment === "" ? "" : " "}At most one of ${field.name}, ${others.join(", ")} is set.`.trim();
}

/** "/v1.0/talks/{chat_id}" from a template, `{x=**}` written as `{x}`. */
const openApiPath = (binding: RestBinding): string => binding.template.source.replace(/\{([^}=]+)(=[^}]*)?\}/g, "{$1}");

/** Query parameters of a call without a body: the request's fields not in the path, dotted through messages. */
function queryParameters(message: DescMessage, skip: ReadonlySet<string>, prefix = "", depth = 0): JsonSchema[] {
  const parameters: JsonSchema[] = [];
  for (const field of message.fields) {
    const name = `${prefix}${field.name}`;
    if (skip.has(name)) continue;
    if (field.fieldKind === "message") {
      const wellKnown = wellKnownSchema(field.message, "request");
      if (wellKnown !== undefined) parameters.push(parameter(name, wellKnown, field));
      else if (depth < 3) parameters.push(...queryParameters(field.message, skip, `${name}.`, depth + 1));
      continue;
    }
    if (field.fieldKind === "map" || (field.fieldKind === "list" && field.listKind === "message")) continue;
    const schema =
      field.fieldKind === "scalar"
        ? scalarSchema(field.scalar, "request")
        : field.fieldKind === "enum"
          ? enumSchema(field.enum)
          : { type: "array", items: field.listKind === "scalar" ? scalarSchema(field.scalar, "request") : enumSchema(field.enum) };
    parameters.push(parameter(name, schema, field));
  }
  return parameters;
}

function parameter(name: string, schema: JsonSchema, field: DescField): JsonSchema {
  return described({ name, in: "query", required: false, schema }, commentOf(field));
}

const errorRef = { $ref: "#/components/schemas/Error" };

function operation(binding: RestBinding, operationId: string, schemas: Schemas): JsonSchema {
  const { method } = binding;
  const pathFields = binding.template.segments.flatMap((s) => (s.kind === "field" ? [s.path] : []));
  const comment = commentOf(method);
  const op: Record<string, unknown> = {
    operationId,
    tags: [method.parent.name],
    summary: /^[^.]*\.?/.exec(comment)?.[0] ?? method.name,
    description: `${comment}${comment === "" ? "" : " "}The RPC ${method.parent.typeName}/${method.name}.`,
  };
  const parameters: JsonSchema[] = pathFields.map((path) => {
    const field = method.input.fields.find((f) => f.name === path);
    if (field === undefined || field.fieldKind !== "scalar")
      throw new Error(`${operationId}: path field ${path} is not a scalar field of ${method.input.typeName}`);
    return described({ name: path, in: "path", required: true, schema: scalarSchema(field.scalar, "request") }, commentOf(field));
  });
  const skip = new Set(pathFields);
  // A DELETE without a body in its rule still takes its fields from a JSON body (request-json.ts).
  const body = binding.body === "" && binding.httpMethod === "DELETE" ? "*" : binding.body;
  if (binding.body === "") parameters.push(...queryParameters(method.input, skip));
  if (parameters.length > 0) op["parameters"] = parameters;
  if (body !== "") {
    const field = body === "*" ? undefined : method.input.fields.find((f) => f.name === body);
    const schema =
      field === undefined
        ? schemas.request(method.input, skip)
        : field.fieldKind === "message"
          ? schemas.request(field.message)
          : { type: "object" };
    op["requestBody"] = { required: binding.body !== "", content: { "application/json": { schema } } };
  }
  const output = binding.responseBody === "" ? undefined : method.output.fields.find((f) => f.name === binding.responseBody);
  if (binding.responseBody !== "" && output?.fieldKind !== "message")
    throw new Error(`${operationId}: response_body ${binding.responseBody} is not a message field`);
  const answer = output?.fieldKind === "message" ? schemas.response(output.message) : schemas.response(method.output);
  const content =
    method.methodKind === "server_streaming"
      ? {
          // One JSON object per line; a stream that fails ends with an {"error": ...} line.
          "application/x-ndjson": {
            schema: {
              oneOf: [answer, { type: "object", properties: { error: errorRef }, required: ["error"], additionalProperties: false }],
            },
          },
        }
      : { "application/json": { schema: answer } };
  op["responses"] = {
    "200": { description: method.methodKind === "server_streaming" ? "newline-delimited JSON, one response per line" : "OK", content },
    default: {
      description: "an error: the HTTP status of its gRPC code, the code's name in lower case (invalid_argument, not_found...)",
      content: { "application/json": { schema: errorRef } },
    },
  };
  return op;
}

/** The OpenAPI document of the services' REST bindings. */
export function openApiDocument(services: readonly DescService[]): JsonSchema {
  const schemas = new Schemas();
  const paths: Record<string, Record<string, JsonSchema>> = {};
  const seen = new Map<string, number>();
  for (const binding of restBindings(services)) {
    const base = `${binding.method.parent.name}.${binding.method.name}`;
    const count = (seen.get(base) ?? 0) + 1;
    seen.set(base, count);
    const path = openApiPath(binding);
    const item = (paths[path] ??= {});
    const verb = binding.httpMethod.toLowerCase();
    if (item[verb] !== undefined) throw new Error(`two bindings for ${binding.httpMethod} ${path}`);
    item[verb] = operation(binding, count === 1 ? base : `${base}.${count}`, schemas);
  }
  const components: Record<string, JsonSchema> = Object.fromEntries([...schemas.components].sort(([a], [b]) => a.localeCompare(b)));
  components["Error"] = {
    type: "object",
    description: "An error answer; the HTTP status is that of the gRPC code.",
    properties: {
      code: { type: "string", description: "The gRPC code's name in lower case, e.g. not_found." },
      message: { type: "string" },
    },
    required: ["code", "message"],
    additionalProperties: false,
  };
  return {
    openapi: "3.1.0",
    info: {
      title: "Talkhub REST API",
      version: "v1",
      description:
        "The /v1.0 REST paths of the talk.v1 protos (proto/talk/v1), generated from their google.api.http annotations by npm run generate. The same calls answer over gRPC, Connect and gRPC-Web; docs/api.md has the rules and limits.",
    },
    tags: services.map((s) => described({ name: s.name }, commentOf(s))),
    security: [{ bearer: [] }, { token: [] }],
    paths,
    components: {
      schemas: components,
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer", bearerFormat: "JWT" },
        token: {
          type: "apiKey",
          in: "query",
          name: "token",
          description: "The same JWT in the query, as the spec's curl examples send it; ignored when an Authorization header is present.",
        },
      },
    },
  };
}
