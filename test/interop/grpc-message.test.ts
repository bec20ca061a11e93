/**
 * grpc-message is encoded as the gRPC spec says (only "%" and bytes outside 0x20-0x7E
 * percent-encoded), on the direct gRPC path and on connect's (a gzip-compressed request goes
 * there), so that other stacks show the message as written: @grpc/grpc-js (which decodes with
 * decodeURI, leaving %3A and %2C of a fuller encoding as they are) and Python's grpcio
 * (test/interop/clients/grpcio_error.py, with Debian's python3-grpcio).
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { describe, expect, it } from "vitest";
import { encodeGrpcMessage } from "../../src/http/grpc-message.js";
import { newCustomer, useService } from "../support/harness.js";
import { runs, toolPresent } from "../support/external-tools.js";

const run = promisify(execFile);
const root = fileURLToPath(new URL("../..", import.meta.url));
const debianPython = "/usr/bin/python3";
const haveGrpcio = toolPresent(
  "grpc-message (Python grpcio)",
  "python3-grpcio",
  runs(debianPython, ["-c", "import grpc"]),
  "apt-get install -y python3-grpcio",
);

/** A bad id whose error message holds ":", ",", '"', "%" and a non-ASCII letter. */
const badId = "nope 50% ö";
const expected = `id: must be a UUID, got "${badId}"`;

const encodings = [
  ["uncompressed (the direct path)", "identity"],
  ["gzip-compressed (connect's path)", "gzip"],
] as const;

function talkService(address: string, gzip: boolean): grpc.Client {
  const definition = protoLoader.loadSync(["talk/v1/talk_service.proto"], {
    includeDirs: [`${root}proto`, `${root}third_party`],
    keepCase: true,
  });
  const talkV1 = (grpc.loadPackageDefinition(definition)["talk"] as grpc.GrpcObject)["v1"] as grpc.GrpcObject;
  const ctor = talkV1["TalkService"] as grpc.ServiceClientConstructor;
  return new ctor(address, grpc.credentials.createInsecure(), gzip ? { "grpc.default_compression_algorithm": 2 } : {});
}

describe("grpc-message as the gRPC spec encodes it", () => {
  const env = useService("pglite");

  it("encodes only %, and bytes outside printable ASCII", () => {
    expect(encodeGrpcMessage(expected)).toBe('id: must be a UUID, got "nope 50%25 %C3%B6"');
    expect(encodeGrpcMessage("tab\there ~")).toBe("tab%09here ~");
  });

  it.each(encodings)("grpc-js shows the message as written, %s", async (_, encoding) => {
    const ann = await env.agent(newCustomer(), "Ann");
    const client = talkService(new URL(env.url).host, encoding === "gzip");
    const metadata = new grpc.Metadata();
    metadata.set("authorization", `Bearer ${ann.token}`);
    try {
      const error = await new Promise<grpc.ServiceError>((resolve, reject) => {
        const getTalk = (
          client as unknown as Record<string, (r: object, m: grpc.Metadata, cb: (e: grpc.ServiceError | null) => void) => void>
        )["GetTalk"];
        getTalk?.call(client, { id: badId }, metadata, (e) => (e === null ? reject(new Error("GetTalk succeeded")) : resolve(e)));
      });
      expect(error.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(error.details).toBe(expected);
    } finally {
      client.close();
    }
  });

  it.runIf(haveGrpcio).each(encodings)(
    "Python grpcio shows the message as written, %s",
    async (_, encoding) => {
      const ann = await env.agent(newCustomer(), "Ann");
      const script = `${root}test/interop/clients/grpcio_error.py`;
      const { stdout } = await run(debianPython, [script, new URL(env.url).host, ann.token, badId, encoding], { timeout: 60_000 });
      expect(stdout).toBe(`INVALID_ARGUMENT\n${expected}\n`);
    },
    60_000,
  );
});
