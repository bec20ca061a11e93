/**
 * The leading comments of proto declarations, read from the source info that `buf build`
 * keeps in gen/descriptors.binpb. The OpenAPI document and the API reference of docs/api.md
 * both take their words from here, so they say what the protos say.
 */
import type { DescField, DescMessage, DescMethod, DescService } from "@bufbuild/protobuf";

type Commented = DescService | DescMethod | DescMessage | DescField;

/** The source-info path of a declaration (descriptor.proto field numbers and indexes). */
function pathOf(desc: Commented): number[] {
  switch (desc.kind) {
    case "service":
      return [6, desc.file.services.indexOf(desc)];
    case "rpc":
      return [...pathOf(desc.parent), 2, desc.parent.methods.indexOf(desc)];
    case "message":
      return desc.parent === undefined
        ? [4, desc.file.messages.indexOf(desc)]
        : [...pathOf(desc.parent), 3, desc.parent.nestedMessages.indexOf(desc)];
    case "field":
      return [...pathOf(desc.parent), 2, desc.parent.fields.indexOf(desc)];
  }
}

function fileOf(desc: Commented) {
  return desc.kind === "rpc" ? desc.parent.file : desc.kind === "field" ? desc.parent.file : desc.file;
}

/** The comment above a declaration, its lines joined by spaces; "" when it has none. */
export function commentOf(desc: Commented): string {
  const path = pathOf(desc);
  const location = fileOf(desc).proto.sourceCodeInfo?.location.find(
    (l) => l.path.length === path.length && l.path.every((n, i) => n === path[i]),
  );
  return (location?.leadingComments ?? "")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "")
    .join(" ");
}
