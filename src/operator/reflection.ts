/**
 * gRPC server reflection, v1 and v1alpha (grpcurl and buf curl use either): lists the services
 * and serves the descriptors of their files, with comments. The two versions share one wire
 * format, so v1alpha is answered by the v1 code through a binary round trip.
 */
import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { createServiceImplSpec, type ServiceImplSpec } from "@connectrpc/connect";
import {
  ServerReflection as ServerReflectionV1,
  ServerReflectionRequestSchema as RequestV1,
  ServerReflectionResponseSchema as ResponseV1,
  type ServerReflectionRequest,
} from "../../gen/grpc/reflection/v1/reflection_pb.js";
import {
  ServerReflection as ServerReflectionV1alpha,
  ServerReflectionRequestSchema as RequestV1alpha,
  ServerReflectionResponseSchema as ResponseV1alpha,
} from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import type { DescriptorIndex } from "./descriptors.js";

const notFound = 5;

function answer(
  index: DescriptorIndex,
  services: readonly string[],
  request: ServerReflectionRequest,
): MessageInitShape<typeof ResponseV1> {
  const base = { validHost: request.host, originalRequest: request };
  const files = (name: string | undefined, what: string): MessageInitShape<typeof ResponseV1> => {
    const found = name === undefined ? undefined : index.fileWithImports(name);
    return found === undefined
      ? { ...base, messageResponse: { case: "errorResponse", value: { errorCode: notFound, errorMessage: `${what} not found` } } }
      : { ...base, messageResponse: { case: "fileDescriptorResponse", value: { fileDescriptorProto: found } } };
  };
  const { messageRequest: m } = request;
  switch (m.case) {
    case "listServices":
      return { ...base, messageResponse: { case: "listServicesResponse", value: { service: services.map((name) => ({ name })) } } };
    case "fileByFilename":
      return files(m.value, `file ${m.value}`);
    case "fileContainingSymbol":
      return files(index.fileDeclaring(m.value), `symbol ${m.value}`);
    case "fileContainingExtension":
      return files(index.fileExtending(m.value.containingType, m.value.extensionNumber), `extension ${m.value.extensionNumber}`);
    case "allExtensionNumbersOfType":
      return {
        ...base,
        messageResponse: {
          case: "allExtensionNumbersResponse",
          value: { baseTypeName: m.value, extensionNumber: index.extensionNumbers(m.value) },
        },
      };
    default:
      return { ...base, messageResponse: { case: "errorResponse", value: { errorCode: 3, errorMessage: "unsupported request" } } };
  }
}

/** Reflection v1 and v1alpha, for the named services (fully-qualified names). */
export function reflectionServices(index: DescriptorIndex, services: readonly string[]): ServiceImplSpec[] {
  const all = [...services, ServerReflectionV1.typeName, ServerReflectionV1alpha.typeName];
  return [
    createServiceImplSpec<typeof ServerReflectionV1>(ServerReflectionV1, {
      async *serverReflectionInfo(requests) {
        for await (const request of requests) yield answer(index, all, request);
      },
    }),
    createServiceImplSpec<typeof ServerReflectionV1alpha>(ServerReflectionV1alpha, {
      async *serverReflectionInfo(requests) {
        for await (const request of requests) {
          const v1 = fromBinary(RequestV1, toBinary(RequestV1alpha, request));
          yield fromBinary(ResponseV1alpha, toBinary(ResponseV1, create(ResponseV1, answer(index, all, v1))));
        }
      },
    }),
  ];
}
