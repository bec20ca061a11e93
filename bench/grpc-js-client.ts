/**
 * A plain @grpc/grpc-js client of Talkhub, its protos loaded at runtime by @grpc/proto-loader as
 * test/interop/interop-grpc-js.test.ts does: what a team outside would write, with none of the
 * bench's lean transport. Fields keep their proto names (snake_case) and int64s are strings.
 */
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

const root = fileURLToPath(new URL("..", import.meta.url));

/** The fields the bench reads, as proto-loader decodes them (keepCase, longs as strings). */
export interface TalkJson {
  readonly id: string;
  readonly last_seq: string;
}
export interface WatchTalkJson {
  readonly event?: { readonly seq: string; readonly message_created?: { readonly text: string } };
}

let talkV1: grpc.GrpcObject | undefined;

function services(): grpc.GrpcObject {
  // google/api/annotations.proto is the committed copy in third_party/, as a client team loads it.
  talkV1 ??= (
    grpc.loadPackageDefinition(
      protoLoader.loadSync(["talk/v1/talk_service.proto", "talk/v1/message_service.proto"], {
        includeDirs: [`${root}proto`, `${root}third_party`],
        keepCase: true,
        longs: String,
      }),
    )["talk"] as grpc.GrpcObject
  )["v1"] as grpc.GrpcObject;
  return talkV1;
}

export interface GrpcJsClients {
  readonly talks: grpc.Client;
  readonly messages: grpc.Client;
  /** The caller's credentials, for every call. */
  readonly metadata: grpc.Metadata;
  close(): void;
}

/** Clients of TalkService and MessageService for `baseUrl` (http://host:port), as the agent of `token`. */
export function grpcJsClients(baseUrl: string, token: string): GrpcJsClients {
  const address = new URL(baseUrl).host;
  const client = (name: string) => new (services()[name] as grpc.ServiceClientConstructor)(address, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${token}`);
  const talks = client("TalkService");
  const messages = client("MessageService");
  return {
    talks,
    messages,
    metadata,
    close: () => {
      talks.close();
      messages.close();
    },
  };
}

type Callback = (error: grpc.ServiceError | null, response?: unknown) => void;
type UnaryMethod = (request: object, metadata: grpc.Metadata, callback: Callback) => grpc.ClientUnaryCall;
type StreamMethod = (request: object, metadata: grpc.Metadata) => grpc.ClientReadableStream<unknown>;

function method<T>(client: grpc.Client, name: string): T {
  const fn = (client as unknown as Record<string, unknown>)[name];
  if (typeof fn !== "function") throw new Error(`no method ${name}`);
  return fn.bind(client) as T;
}

/** Calls a unary method by its proto name; resolves with the response. */
export function unary<T>(client: grpc.Client, name: string, request: object, metadata: grpc.Metadata): Promise<T> {
  const call = method<UnaryMethod>(client, name);
  return new Promise<T>((resolve, reject) => {
    call(request, metadata, (error, response) => (error === null ? resolve(response as T) : reject(error)));
  });
}

/** Opens a WatchTalk stream (the TalkService client) after `afterSeq`. */
export function watchTalk(
  talks: grpc.Client,
  chatId: string,
  afterSeq: string,
  metadata: grpc.Metadata,
): grpc.ClientReadableStream<WatchTalkJson> {
  return method<StreamMethod>(talks, "WatchTalk")(
    { chat_id: chatId, after_seq: afterSeq },
    metadata,
  ) as grpc.ClientReadableStream<WatchTalkJson>;
}
