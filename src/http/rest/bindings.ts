/** The REST bindings of the services: every google.api.http rule and its additional bindings. */
import { getOption, hasOption, type DescMethod, type DescService } from "@bufbuild/protobuf";
import { http } from "../../../gen/google/api/annotations_pb.js";
import type { HttpRule } from "../../../gen/google/api/http_pb.js";
import { fieldPath } from "./field-path.js";
import { parsePathTemplate, type PathTemplate } from "./path-template.js";

export type HttpMethod = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

export interface RestBinding {
  readonly httpMethod: HttpMethod;
  readonly template: PathTemplate;
  readonly method: DescMethod;
  /** "" (no body), "*" (the whole request) or the name of the request field the body fills. */
  readonly body: string;
  /** "" (the whole response) or the name of the response field that is the HTTP body. */
  readonly responseBody: string;
}

function bindingOf(method: DescMethod, rule: HttpRule): RestBinding {
  const { pattern } = rule;
  let httpMethod: HttpMethod;
  let path: string;
  switch (pattern.case) {
    case "get":
    case "post":
    case "put":
    case "patch":
    case "delete":
      httpMethod = pattern.case.toUpperCase() as HttpMethod;
      path = pattern.value;
      break;
    default:
      throw new Error(`${method.toString()}: unsupported google.api.http pattern ${String(pattern.case)}`);
  }
  const template = parsePathTemplate(path);
  // Request data is only ever set along real fields: a rule naming another is refused at start.
  for (const segment of template.segments) {
    if (segment.kind === "field" && fieldPath(method.input, segment.path) === undefined) {
      throw new Error(`${method.toString()}: path field ${segment.path} is not a field of ${method.input.typeName}`);
    }
  }
  if (rule.body !== "" && rule.body !== "*" && fieldPath(method.input, rule.body)?.length !== 1) {
    throw new Error(`${method.toString()}: body ${rule.body} is not a field of ${method.input.typeName}`);
  }
  return { httpMethod, template, method, body: rule.body, responseBody: rule.responseBody };
}

/** Every binding of every method of the services, in declaration order. */
export function restBindings(services: readonly DescService[]): RestBinding[] {
  const bindings: RestBinding[] = [];
  for (const service of services) {
    for (const method of service.methods) {
      if (!hasOption(method, http)) continue;
      const rule = getOption(method, http);
      bindings.push(bindingOf(method, rule), ...rule.additionalBindings.map((extra) => bindingOf(method, extra)));
    }
  }
  return bindings;
}
