/**
 * Interop: an independent gRPC implementation (@grpc/grpc-js with protos loaded at runtime)
 * talks to the service.
 */
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mintToken } from "../../src/auth/tokens.js";
import { backends, TestEnv, newCustomer } from "../support/harness.js";

const root = fileURLToPath(new URL("../..", import.meta.url));

/** The snake_case shapes (keepCase) of the fields this test reads. */
interface TalkJson {
  id: string;
  type: string;
  status: string;
  member_count: number;
  customer_id: string;
}
interface MessageJson {
  id: string;
  chat_id: string;
  owner_id: string;
  owner_type: string;
  type: string;
  text: string;
  seq: string;
}

type Callback = (error: grpc.ServiceError | null, response?: unknown) => void;
type UnaryMethod = (request: object, metadata: grpc.Metadata, callback: Callback) => grpc.ClientUnaryCall;

function serviceClient(pkg: grpc.GrpcObject, name: string, address: string): grpc.Client {
  const talkV1 = (pkg["talk"] as grpc.GrpcObject | undefined)?.["v1"] as grpc.GrpcObject | undefined;
  const ctor = talkV1?.[name];
  if (typeof ctor !== "function") throw new Error(`talk.v1.${name} not found in the loaded protos`);
  return new (ctor as grpc.ServiceClientConstructor)(address, grpc.credentials.createInsecure());
}

/** Calls a unary method by its proto name and resolves with the response object. */
function unary<T>(client: grpc.Client, method: string, request: object, metadata: grpc.Metadata): Promise<T> {
  const fn = (client as unknown as Record<string, UnaryMethod | undefined>)[method];
  if (fn === undefined) throw new Error(`no method ${method}`);
  return new Promise<T>((resolve, reject) => {
    fn.call(client, request, metadata, (error, response) => (error === null ? resolve(response as T) : reject(error)));
  });
}

async function grpcError(call: Promise<unknown>): Promise<grpc.ServiceError> {
  try {
    await call;
  } catch (error) {
    return error as grpc.ServiceError;
  }
  throw new Error("expected the call to fail");
}

describe.each(backends)("interop with @grpc/grpc-js on %s", (backend) => {
  const env = new TestEnv(backend);
  let talks: grpc.Client;
  let messages: grpc.Client;

  beforeAll(async () => {
    await env.start();
    const definition = protoLoader.loadSync(["talk/v1/talk_service.proto", "talk/v1/message_service.proto"], {
      includeDirs: [`${root}proto`, `${root}third_party`],
      keepCase: true,
      longs: String,
      defaults: true,
    });
    const pkg = grpc.loadPackageDefinition(definition);
    const address = new URL(env.service.url).host;
    talks = serviceClient(pkg, "TalkService", address);
    messages = serviceClient(pkg, "MessageService", address);
  });

  afterAll(async () => {
    talks?.close();
    messages?.close();
    await env.stop();
  });

  it("creates a talk, sends and lists messages, and reports NOT_FOUND", async () => {
    const customer = newCustomer();
    const [a, b] = await Promise.all([env.agent(customer, "Ann"), env.agent(customer, "Bob")]);
    const metadata = new grpc.Metadata();
    metadata.set("authorization", `Bearer ${a.token}`);

    const created = await unary<{ talk: TalkJson }>(
      talks,
      "CreateTalk",
      { type: "group", name: "interop", participant_ids: [b.id] },
      metadata,
    );
    expect(created.talk).toMatchObject({ type: "group", status: "active", member_count: 2, customer_id: customer });
    const chatId = created.talk.id;

    const sent = await unary<{ message: MessageJson }>(messages, "SendMessage", { chat_id: chatId, text: "over grpc-js" }, metadata);
    expect(sent.message).toMatchObject({ chat_id: chatId, owner_id: a.id, owner_type: "agent", type: "normal", text: "over grpc-js" });
    expect(BigInt(sent.message.seq)).toBeGreaterThan(0n);

    const listed = await unary<{ result: MessageJson[]; next_page_token: string }>(messages, "ListMessages", { chat_id: chatId }, metadata);
    expect(listed.result[0]).toMatchObject({ id: sent.message.id, text: "over grpc-js" });
    expect(listed.next_page_token).toBe("");

    const missing = await grpcError(unary(talks, "GetTalk", { id: randomUUID() }, metadata));
    expect(missing.code).toBe(grpc.status.NOT_FOUND);
    expect(missing.code).toBe(5);

    const anonymous = await grpcError(unary(talks, "ListTalks", {}, new grpc.Metadata()));
    expect(anonymous.code).toBe(grpc.status.UNAUTHENTICATED);
  });

  it("accepts a token minted independently of the harness", async () => {
    const token = await mintToken(env.secret, { customerId: newCustomer(), agentId: randomUUID(), name: "Solo" });
    const metadata = new grpc.Metadata();
    metadata.set("authorization", `Bearer ${token}`);
    const listed = await unary<{ result: TalkJson[] }>(talks, "ListTalks", { page_size: 10 }, metadata);
    expect(listed.result).toEqual([]);
  });
});
