/**
 * x-request-id is echoed on gRPC (grpc-js: the response headers of an answer, the trailers of
 * an error) and Connect answers and errors, not only on REST; CORS preflights allow the headers
 * they ask for (traceparent, a client's own), reflected rather than from a fixed list.
 */
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { describe, expect, it } from "vitest";
import { newCustomer, useService } from "../support/harness.js";
import { rest } from "../support/rest-helpers.js";

const root = fileURLToPath(new URL("../..", import.meta.url));

type Unary = (request: object, metadata: grpc.Metadata, callback: (error: grpc.ServiceError | null) => void) => grpc.ClientUnaryCall;

describe("x-request-id on every protocol", () => {
  const env = useService("pglite");

  it("grpc-js: echoed in the headers of an answer and in the metadata of an error", async () => {
    const ann = await env.agent(newCustomer(), "Ann");
    const definition = protoLoader.loadSync(["talk/v1/talk_service.proto"], {
      includeDirs: [`${root}proto`, `${root}third_party`],
      keepCase: true,
    });
    const talkV1 = (grpc.loadPackageDefinition(definition)["talk"] as grpc.GrpcObject)["v1"] as grpc.GrpcObject;
    const client = new (talkV1["TalkService"] as grpc.ServiceClientConstructor)(new URL(env.url).host, grpc.credentials.createInsecure());
    const call = (method: string, request: object, id: string) => {
      const metadata = new grpc.Metadata();
      metadata.set("authorization", `Bearer ${ann.token}`);
      metadata.set("x-request-id", id);
      return new Promise<{ headers: grpc.Metadata | undefined; error: grpc.ServiceError | null }>((resolve) => {
        let headers: grpc.Metadata | undefined;
        const fn = (client as unknown as Record<string, Unary>)[method];
        const pending = fn?.call(client, request, metadata, (error) => resolve({ headers, error }));
        pending?.on("metadata", (m: grpc.Metadata) => (headers = m));
      });
    };
    try {
      const okId = `grpc-ok-${randomUUID()}`;
      const ok = await call("ListTalks", {}, okId);
      expect(ok.error).toBeNull();
      expect(ok.headers?.get("x-request-id")).toEqual([okId]);

      const errorId = `grpc-error-${randomUUID()}`;
      const failed = await call("GetTalk", { id: randomUUID() }, errorId);
      expect(failed.error?.code).toBe(grpc.status.NOT_FOUND);
      expect(failed.error?.metadata.get("x-request-id")).toEqual([errorId]);
    } finally {
      client.close();
    }
  });

  it("Connect: echoed on an error as on an answer", async () => {
    const ann = await env.agent(newCustomer(), "Ann");
    const id = `connect-error-${randomUUID()}`;
    const reply = await rest(env.url, "POST", "/talk.v1.TalkService/GetTalk", {
      bearer: ann.token,
      headers: { "Content-Type": "application/json", "X-Request-Id": id },
      body: JSON.stringify({ id: randomUUID() }),
    });
    expect(reply.status).toBe(404);
    expect(reply.headers.get("x-request-id")).toBe(id);
  });

  it("CORS preflight allows the headers asked for, traceparent included", async () => {
    const asked = "authorization, content-type, traceparent, tracestate, x-client-build";
    const reply = await rest(env.url, "OPTIONS", "/talk.v1.TalkService/ListTalks", {
      headers: { Origin: "https://console.example", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": asked },
    });
    expect(reply.status).toBe(204);
    expect(reply.headers.get("access-control-allow-headers")).toBe(asked);
    expect(reply.headers.get("vary")).toContain("Access-Control-Request-Headers");
    // A malformed list is not reflected: the fixed list answers, tracing headers in it.
    const odd = await rest(env.url, "OPTIONS", "/talk.v1.TalkService/ListTalks", {
      headers: {
        Origin: "https://console.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-a, (bad)",
      },
    });
    expect(odd.headers.get("access-control-allow-headers")?.toLowerCase()).toContain("traceparent");
  });
});
