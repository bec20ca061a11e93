/**
 * google.api.http path templates: literal segments, `{field}` (one segment), `{field=*}` and
 * `{field=**}` (the rest of the path). Matching yields the captured fields, URL-decoded.
 */

type Segment =
  | { readonly kind: "literal"; readonly value: string }
  | { readonly kind: "field"; readonly path: string; readonly rest: boolean };

export interface PathTemplate {
  readonly source: string;
  readonly segments: readonly Segment[];
}

/** Parses a template such as "/v1.0/talks/{chat_id}/messages"; throws on a malformed one. */
export function parsePathTemplate(source: string): PathTemplate {
  if (!source.startsWith("/")) throw new Error(`path template must start with "/": ${source}`);
  const segments = source
    .slice(1)
    .split("/")
    .map((part): Segment => {
      const field = /^\{([a-z_][a-z0-9_.]*)(?:=(\*\*?))?\}$/i.exec(part);
      if (field?.[1] !== undefined) return { kind: "field", path: field[1], rest: field[2] === "**" };
      if (part.includes("{") || part.includes("}") || part === "") throw new Error(`unsupported path template: ${source}`);
      return { kind: "literal", value: part };
    });
  return { source, segments };
}

/** The fields a path captures, or null when it does not match the template. */
export function matchPathTemplate(template: PathTemplate, path: string): Map<string, string> | null {
  const parts = path.replace(/^\/+/, "").split("/");
  const fields = new Map<string, string>();
  let i = 0;
  for (const segment of template.segments) {
    if (segment.kind === "field" && segment.rest) {
      if (i >= parts.length) return null;
      const rest = parts.slice(i).map(decode);
      if (rest.includes(null)) return null;
      fields.set(segment.path, rest.join("/"));
      return fields;
    }
    const part = parts[i++];
    if (part === undefined || part === "") return null;
    if (segment.kind === "literal") {
      if (part !== segment.value) return null;
    } else {
      const value = decode(part);
      if (value === null) return null;
      fields.set(segment.path, value);
    }
  }
  return i === parts.length ? fields : null;
}

function decode(part: string): string | null {
  try {
    return decodeURIComponent(part);
  } catch {
    return null;
  }
}
