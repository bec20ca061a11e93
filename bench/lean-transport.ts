/**
 * The bench's gRPC transport: unary calls go straight onto a node:http2 stream (one message
 * out; headers, one message and the trailers back), server streams through connect-node's
 * gRPC transport. The load generators share the machine's two cores with the server under
 * test and with Postgres, so what they spend per call is taken from the system they measure;
 * the raw baselines use lean clients (pg) too. Measured here: about 0.2 ms of CPU per unary
 * call, against about 1 ms through connect-node's client.
 */
import http2 from "node:http2";
import { create, fromBinary, toBinary, type DescMessage, type DescMethodUnary, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type Transport, type UnaryResponse } from "@connectrpc/connect";
import { Http2SessionManager, createGrpcTransport } from "@connectrpc/connect-node";

export interface LeanTransport extends Transport {
  close(): void;
}

function envelope(bytes: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(5 + bytes.length);
  frame[0] = 0;
  frame.writeUInt32BE(bytes.length, 1);
  frame.set(bytes, 5);
  return frame;
}

function headerValue(value: string | string[] | number | undefined): string | undefined {
  return value === undefined ? undefined : Array.isArray(value) ? value.join(", ") : String(value);
}

/** One HTTP/2 connection to `baseUrl`; every call carries `headers` (authorization). */
export function createLeanTransport(baseUrl: string, headers: Record<string, string>): LeanTransport {
  let session: http2.ClientHttp2Session | undefined;
  const connect = () => {
    if (session === undefined || session.closed || session.destroyed) {
      session = http2.connect(baseUrl);
      session.on("error", () => undefined);
    }
    return session;
  };
  const sessionManager = new Http2SessionManager(baseUrl);
  const streams = createGrpcTransport({
    baseUrl,
    sessionManager,
    interceptors: [
      (next) => (req) => {
        for (const [name, value] of Object.entries(headers)) req.header.set(name, value);
        return next(req);
      },
    ],
  });
  const unary = <I extends DescMessage, O extends DescMessage>(
    method: DescMethodUnary<I, O>,
    input: MessageInitShape<I>,
  ): Promise<UnaryResponse<I, O>> =>
    new Promise((resolve, reject) => {
      const request = connect().request({
        ":method": "POST",
        ":path": `/${method.parent.typeName}/${method.name}`,
        "content-type": "application/grpc",
        te: "trailers",
        ...headers,
      });
      const chunks: Buffer[] = [];
      let responseHeaders: http2.IncomingHttpHeaders = {};
      let status: string | undefined;
      let message = "";
      request.on("response", (h) => {
        responseHeaders = h;
        status = headerValue(h["grpc-status"]);
        message = headerValue(h["grpc-message"]) ?? "";
      });
      request.on("trailers", (t) => {
        status = headerValue(t["grpc-status"]) ?? status;
        message = headerValue(t["grpc-message"]) ?? message;
      });
      request.on("data", (chunk: Buffer) => chunks.push(chunk));
      request.on("error", (error) => reject(ConnectError.from(error, Code.Unavailable)));
      request.on("end", () => {
        if (status !== "0") {
          reject(new ConnectError(decodeURIComponent(message), status === undefined ? Code.Unknown : (Number(status) as Code)));
          return;
        }
        const body = Buffer.concat(chunks);
        const output = body.length >= 5 ? fromBinary(method.output, body.subarray(5, 5 + body.readUInt32BE(1))) : create(method.output);
        const header = new Headers();
        for (const [name, value] of Object.entries(responseHeaders)) {
          const v = headerValue(value);
          if (!name.startsWith(":") && v !== undefined) header.set(name, v);
        }
        resolve({
          stream: false,
          service: method.parent,
          method,
          header,
          trailer: new Headers(),
          message: output as MessageShape<O>,
        });
      });
      request.end(envelope(toBinary(method.input, create(method.input, input))));
    });
  return {
    unary: (method, _signal, _timeoutMs, _header, input) => unary(method, input),
    stream: (...args) => streams.stream(...args),
    close: () => {
      session?.close();
      sessionManager.abort();
    },
  };
}
