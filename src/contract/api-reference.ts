/**
 * The per-RPC reference of docs/api.md, written from the protos' comments between two marker
 * lines: `npm run generate` rewrites it, and test/contract/api-doc.test.ts fails when the text
 * between the markers is not what the protos say (an RPC, field or comment added, changed or
 * removed without regenerating). The hand-written rules stay outside the markers.
 */
import type { DescField, DescMessage, DescService } from "@bufbuild/protobuf";
import { restBindings } from "../http/rest/bindings.js";
import { commentOf } from "./proto-comments.js";

export const referenceBegin =
  "<!-- reference:begin (npm run generate writes this part from proto/ comments; edit the protos, not this) -->";
export const referenceEnd = "<!-- reference:end -->";

/** A table cell: one line, pipes escaped. */
const cell = (text: string): string => text.replaceAll("|", "\\|").replaceAll("\n", " ");

function typeOf(field: DescField): string {
  switch (field.fieldKind) {
    case "scalar":
      return scalarName(field);
    case "enum":
      return field.enum.typeName;
    case "message":
      return field.message.typeName;
    case "list":
      return `repeated ${field.listKind === "message" ? field.message.typeName : field.listKind === "enum" ? field.enum.typeName : scalarName(field)}`;
    case "map":
      return "map";
  }
}

/** The proto keyword of a scalar field (int32, int64, bool...). */
function scalarName(field: DescField): string {
  const names: Record<number, string> = {
    1: "double",
    2: "float",
    3: "int64",
    4: "uint64",
    5: "int32",
    6: "fixed64",
    7: "fixed32",
    8: "bool",
    9: "string",
    12: "bytes",
    13: "uint32",
    15: "sfixed32",
    16: "sfixed64",
    17: "sint32",
    18: "sint64",
  };
  return names[field.proto.type] ?? "scalar";
}

function fieldTable(message: DescMessage): string[] {
  if (message.fields.length === 0) return ["(no fields)", ""];
  const optional = (f: DescField): string => (f.proto.proto3Optional ? "optional " : "");
  const oneof = (f: DescField): string => (f.oneof !== undefined && !f.proto.proto3Optional ? ` (oneof ${f.oneof.name})` : "");
  return [
    "| field | type | comment |",
    "|---|---|---|",
    ...message.fields.map((f) => `| \`${f.name}\` | ${optional(f)}${typeOf(f)}${oneof(f)} | ${cell(commentOf(f))} |`),
    "",
  ];
}

/** The messages a service's RPCs use besides their own requests and responses, in first-use order. */
function sharedMessages(services: readonly DescService[]): DescMessage[] {
  const own = new Set(services.flatMap((s) => s.methods.flatMap((m) => [m.input.typeName, m.output.typeName])));
  const found: DescMessage[] = [];
  const visit = (message: DescMessage): void => {
    for (const field of message.fields) {
      const child =
        field.fieldKind === "message"
          ? field.message
          : field.fieldKind === "list" && field.listKind === "message"
            ? field.message
            : undefined;
      if (child === undefined || child.typeName.startsWith("google.protobuf.") || own.has(child.typeName) || found.includes(child))
        continue;
      found.push(child);
      visit(child);
    }
  };
  for (const service of services) {
    for (const method of service.methods) {
      visit(method.input);
      visit(method.output);
    }
  }
  return found;
}

/** The generated section, markers included. */
export function renderReference(services: readonly DescService[]): string {
  const bindings = restBindings(services);
  const lines: string[] = [referenceBegin, "", "## Reference (from the protos)", ""];
  lines.push("Each RPC with its REST paths, its request and its response, as `proto/talk/v1` declares and comments them.", "");
  for (const service of services) {
    lines.push(`### ${service.name}`, "", commentOf(service), "");
    for (const method of service.methods) {
      const streaming = method.methodKind === "server_streaming" ? "stream " : "";
      lines.push(`#### ${service.name}.${method.name}`, "");
      lines.push(`\`rpc ${method.name}(${method.input.name}) returns (${streaming}${method.output.name})\``, "");
      lines.push(commentOf(method), "");
      const rest = bindings.filter((b) => b.method === method).map((b) => `\`${b.httpMethod} ${b.template.source}\``);
      if (rest.length > 0) lines.push(`REST: ${rest.join(", ")}`, "");
      lines.push(`Request \`${method.input.name}\`:`, "", ...fieldTable(method.input));
      lines.push(`Response \`${method.output.name}\`:`, "", ...fieldTable(method.output));
    }
  }
  lines.push("### Resources and events", "");
  for (const message of sharedMessages(services)) {
    lines.push(`#### ${message.typeName}`, "", commentOf(message), "", ...fieldTable(message));
  }
  lines.push(referenceEnd);
  return lines.join("\n").replace(/\n{3,}/g, "\n\n");
}

/** docs/api.md with its generated section replaced (appended when it has none yet). */
export function withReference(doc: string, reference: string): string {
  const begin = doc.indexOf(referenceBegin);
  const end = doc.indexOf(referenceEnd);
  if (begin < 0 || end < begin) return `${doc.trimEnd()}\n\n${reference}\n`;
  return `${doc.slice(0, begin)}${reference}${doc.slice(end + referenceEnd.length)}`;
}
