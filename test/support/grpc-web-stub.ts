/**
 * TalkService's client for Google's grpc-web runtime, in the shape protoc-gen-grpc-web gives
 * its TypeScript stubs (import_style=typescript, mode=grpcwebtext): a GrpcWebClientBase in
 * text mode, one MethodDescriptor per method, rpcCall (with a callback) or unaryCall (a
 * promise) for unary methods and serverStreaming for watches. Written by hand because the
 * generator is a native binary that its npm package downloads from GitHub at install time,
 * which this machine cannot reach; the messages are serialized by the protobuf-es schemas of
 * gen/ where a generated stub would use google-protobuf classes. It has no Node imports: the
 * browser test bundles it into a page as it is.
 */
import { create, fromBinary, toBinary, type DescMessage, type DescMethod, type MessageShape } from "@bufbuild/protobuf";
import { GrpcWebClientBase, MethodDescriptor, MethodType, type ClientReadableStream, type Metadata, type RpcError } from "grpc-web";
import {
  CreateTalkRequestSchema,
  CreateTalkResponseSchema,
  GetTalkRequestSchema,
  GetTalkResponseSchema,
  TalkService,
  WatchTalkRequestSchema,
  WatchTalkResponseSchema,
  type CreateTalkRequest,
  type CreateTalkResponse,
  type GetTalkRequest,
  type GetTalkResponse,
  type WatchTalkRequest,
  type WatchTalkResponse,
} from "../../gen/talk/v1/talk_service_pb.js";

/**
 * The descriptor's request and response type slots take message classes; protobuf-es messages
 * are plain objects, so the slot gets a constructor that makes an empty one.
 */
function messageClass<Desc extends DescMessage>(schema: Desc): new () => MessageShape<Desc> {
  return function empty() {
    return create(schema);
  } as unknown as new () => MessageShape<Desc>;
}

function methodDescriptor<I extends DescMessage, O extends DescMessage>(
  method: DescMethod,
  type: string,
  input: I,
  output: O,
): MethodDescriptor<MessageShape<I>, MessageShape<O>> {
  return new MethodDescriptor(
    `/${TalkService.typeName}/${method.name}`,
    type,
    messageClass(input),
    messageClass(output),
    (request: MessageShape<I>) => toBinary(input, request),
    (bytes: Uint8Array) => fromBinary(output, bytes),
  );
}

export class TalkServiceClient {
  private readonly client: GrpcWebClientBase;

  constructor(private readonly hostname: string) {
    this.client = new GrpcWebClientBase({ format: "text" });
  }

  private readonly methodDescriptorCreateTalk = methodDescriptor(
    TalkService.method.createTalk,
    MethodType.UNARY,
    CreateTalkRequestSchema,
    CreateTalkResponseSchema,
  );
  private readonly methodDescriptorGetTalk = methodDescriptor(
    TalkService.method.getTalk,
    MethodType.UNARY,
    GetTalkRequestSchema,
    GetTalkResponseSchema,
  );
  private readonly methodDescriptorWatchTalk = methodDescriptor(
    TalkService.method.watchTalk,
    MethodType.SERVER_STREAMING,
    WatchTalkRequestSchema,
    WatchTalkResponseSchema,
  );

  createTalk(request: CreateTalkRequest, metadata: Metadata | null): Promise<CreateTalkResponse> {
    return this.client.unaryCall(
      `${this.hostname}/talk.v1.TalkService/CreateTalk`,
      request,
      metadata ?? {},
      this.methodDescriptorCreateTalk,
    );
  }

  getTalk(request: GetTalkRequest, metadata: Metadata | null): Promise<GetTalkResponse>;
  getTalk(
    request: GetTalkRequest,
    metadata: Metadata | null,
    callback: (err: RpcError | null, response: GetTalkResponse) => void,
  ): ClientReadableStream<GetTalkResponse>;
  getTalk(
    request: GetTalkRequest,
    metadata: Metadata | null,
    callback?: (err: RpcError | null, response: GetTalkResponse) => void,
  ): Promise<GetTalkResponse> | ClientReadableStream<GetTalkResponse> {
    const url = `${this.hostname}/talk.v1.TalkService/GetTalk`;
    if (callback !== undefined) return this.client.rpcCall(url, request, metadata ?? {}, this.methodDescriptorGetTalk, callback);
    return this.client.unaryCall(url, request, metadata ?? {}, this.methodDescriptorGetTalk);
  }

  watchTalk(request: WatchTalkRequest, metadata: Metadata | null): ClientReadableStream<WatchTalkResponse> {
    return this.client.serverStreaming(
      `${this.hostname}/talk.v1.TalkService/WatchTalk`,
      request,
      metadata ?? {},
      this.methodDescriptorWatchTalk,
    );
  }
}
