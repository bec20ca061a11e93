/**
 * The full descriptors of every served proto file, with their comments, as `buf build` wrote
 * them to gen/descriptors.binpb (npm run generate). Server reflection answers from them.
 */
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema, FileDescriptorSetSchema, type FileDescriptorProto } from "@bufbuild/protobuf/wkt";
import { readFileSync } from "node:fs";

export interface DescriptorIndex {
  /** A file and every file it imports, transitively, each encoded; undefined for an unknown file. */
  fileWithImports(name: string): Uint8Array[] | undefined;
  /** The file that declares a fully-qualified symbol (message, enum, service, method, field). */
  fileDeclaring(symbol: string): string | undefined;
  /** The file that declares extension `number` of message `extendee`. */
  fileExtending(extendee: string, number: number): string | undefined;
  /** The extension numbers known for a message. */
  extensionNumbers(extendee: string): number[];
}

function symbolsOf(file: FileDescriptorProto): string[] {
  const prefix = file.package === "" ? "" : `${file.package}.`;
  const symbols: string[] = [];
  const messages = (list: FileDescriptorProto["messageType"], scope: string): void => {
    for (const message of list) {
      const name = `${scope}${message.name}`;
      symbols.push(name, ...message.field.map((f) => `${name}.${f.name}`), ...message.enumType.map((e) => `${name}.${e.name}`));
      messages(message.nestedType, `${name}.`);
    }
  };
  messages(file.messageType, prefix);
  symbols.push(...file.enumType.map((e) => `${prefix}${e.name}`));
  for (const service of file.service) {
    symbols.push(`${prefix}${service.name}`, ...service.method.map((m) => `${prefix}${service.name}.${m.name}`));
  }
  symbols.push(...file.extension.map((e) => `${prefix}${e.name}`));
  return symbols;
}

/** Loads the descriptor set and indexes it. */
export function loadDescriptors(path = new URL("../../gen/descriptors.binpb", import.meta.url)): DescriptorIndex {
  const set = fromBinary(FileDescriptorSetSchema, readFileSync(path));
  const files = new Map(set.file.map((file) => [file.name, file]));
  // Each file is encoded when first asked for: encoding them all made a visible share of a start.
  const encoded = new Map<string, Uint8Array>();
  const encode = (name: string): Uint8Array[] => {
    const file = files.get(name);
    if (file === undefined) return [];
    let bytes = encoded.get(name);
    if (bytes === undefined) encoded.set(name, (bytes = toBinary(FileDescriptorProtoSchema, file)));
    return [bytes];
  };
  const declaredIn = new Map<string, string>();
  const extensions = new Map<string, Map<number, string>>();
  for (const file of set.file) {
    for (const symbol of symbolsOf(file)) declaredIn.set(symbol, file.name);
    for (const ext of file.extension) {
      const extendee = ext.extendee.replace(/^\./, "");
      const byNumber = extensions.get(extendee) ?? new Map<number, string>();
      byNumber.set(ext.number, file.name);
      extensions.set(extendee, byNumber);
    }
  }
  return {
    fileWithImports(name) {
      if (!files.has(name)) return undefined;
      const seen = new Set<string>();
      const visit = (n: string): void => {
        if (seen.has(n)) return;
        seen.add(n);
        for (const dep of files.get(n)?.dependency ?? []) visit(dep);
      };
      visit(name);
      return [...seen].flatMap(encode);
    },
    fileDeclaring: (symbol) => declaredIn.get(symbol.replace(/^\./, "")),
    fileExtending: (extendee, number) => extensions.get(extendee.replace(/^\./, ""))?.get(number),
    extensionNumbers: (extendee) => [...(extensions.get(extendee.replace(/^\./, ""))?.keys() ?? [])],
  };
}
