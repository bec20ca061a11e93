/**
 * The contract as buf built it: the services of proto/talk/v1 from gen/descriptors.binpb,
 * comments included (the generated TypeScript in gen/ drops them).
 */
import { createFileRegistry, fromBinary, type DescService } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { readFileSync } from "node:fs";

/** The services client teams call, in the order the docs present them. */
export const contractServices = ["talk.v1.TalkService", "talk.v1.MessageService", "talk.v1.AgentService"] as const;

export function loadContractServices(path = new URL("../../gen/descriptors.binpb", import.meta.url)): DescService[] {
  const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(path)));
  return contractServices.map((name) => {
    const service = registry.getService(name);
    if (service === undefined) throw new Error(`${name} is not in ${String(path)}`);
    return service;
  });
}
