/**
 * gRPC-Web's text mode around a universal call (src/http/grpc-web-text.ts): what the call is
 * given (the binary content type, the decoded body, however its base64 arrives in chunks), what
 * the client gets back (each chunk as padded base64 of its own), and the bodies refused.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import type { UniversalServerRequest, UniversalServerResponse } from "@connectrpc/connect/protocol";
import { describe, expect, it } from "vitest";
import { withGrpcWebText } from "../../src/http/grpc-web-text.js";

async function* chunks(...parts: readonly (string | Uint8Array)[]): AsyncIterable<Uint8Array> {
  for (const part of parts) yield typeof part === "string" ? Buffer.from(part, "latin1") : part;
}

async function readAll(body: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const read: Uint8Array[] = [];
  for await (const chunk of body) read.push(chunk);
  return read;
}

function request(contentType: string, body: AsyncIterable<Uint8Array>): UniversalServerRequest {
  const header = new Headers({ "content-type": contentType, "content-length": "99", "x-grpc-web": "1" });
  return {
    httpVersion: "1.1",
    url: "http://x/talk.v1.TalkService/GetTalk",
    method: "POST",
    header,
    body,
    signal: new AbortController().signal,
  };
}

/** A call that reads its request whole and answers `frames`, one chunk each, as gRPC-Web. */
function answering(frames: readonly Uint8Array[]) {
  const seen: { header?: Headers; body?: Buffer } = {};
  const call = async (req: UniversalServerRequest): Promise<UniversalServerResponse> => {
    seen.header = req.header;
    seen.body = Buffer.concat(await readAll(req.body as AsyncIterable<Uint8Array>));
    return {
      status: 200,
      header: new Headers({ "content-type": "application/grpc-web+proto", "content-length": "7" }),
      body: chunks(...frames),
    };
  };
  return { call: withGrpcWebText(call), seen };
}

const bytes = (...values: number[]): Uint8Array => Uint8Array.from(values);

describe("gRPC-Web text mode", () => {
  it("gives the call the binary content type and the decoded body, padded pieces and split groups alike", async () => {
    const { call, seen } = answering([]);
    // AQIDBAU= is 1..5, Bgc= is 6 and 7: two pieces encoded on their own, cut mid-group.
    await call(request("application/grpc-web-text", chunks("AQ", "IDBAU=B", "gc", "=")));
    expect([...(seen.body ?? [])]).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(seen.header?.get("content-type")).toBe("application/grpc-web+proto");
    expect(seen.header?.get("content-length")).toBeNull();
    expect(seen.header?.get("x-grpc-web")).toBe("1");

    await call(request("application/grpc-web-text+proto", chunks("AQIDBAUG")));
    expect(seen.header?.get("content-type")).toBe("application/grpc-web+proto");
    expect([...(seen.body ?? [])]).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it("answers each chunk as base64 of its own, padded, as the text content type", async () => {
    const { call } = answering([bytes(0, 0, 0, 0, 1, 9), bytes(0x80, 0, 0, 0, 0)]);
    const res = await call(request("application/grpc-web-text", chunks("AAAAAAA=")));
    expect(res.header?.get("content-type")).toBe("application/grpc-web-text+proto");
    expect(res.header?.get("content-length")).toBeNull();
    const text = (await readAll(res.body ?? chunks())).map((chunk) => Buffer.from(chunk).toString("latin1"));
    expect(text).toEqual(["AAAAAAEJ", "gAAAAAA="]);
  });

  it("refuses a body that is not base64, or ends inside a group, as INVALID_ARGUMENT", async () => {
    for (const body of ["AQI", "AQID!AAA", "A===", "AQ=A", "AQ==AQ", "AQIDBA==="]) {
      const { call } = answering([]);
      const error = await call(request("application/grpc-web-text", chunks(body))).then(
        () => undefined,
        (reason: unknown) => reason,
      );
      expect(error, body).toBeInstanceOf(ConnectError);
      expect((error as ConnectError).code, body).toBe(Code.InvalidArgument);
    }
  });

  it("passes other calls through untouched, the text form of JSON too (not in the spec)", async () => {
    for (const contentType of ["application/grpc-web+proto", "application/grpc-web-text+json"]) {
      const { call, seen } = answering([bytes(0x80, 0, 0, 0, 0)]);
      const req = request(contentType, chunks(bytes(0, 0, 0, 0, 0)));
      const res = await call(req);
      expect(seen.header).toBe(req.header);
      expect(res.header?.get("content-type")).toBe("application/grpc-web+proto");
      expect(await readAll(res.body ?? chunks())).toEqual([bytes(0x80, 0, 0, 0, 0)]);
    }
  });

  it("leaves an answer that is not gRPC-Web as it is (an unsupported method)", async () => {
    const call = withGrpcWebText(async () => ({ status: 405, header: new Headers({ allow: "POST" }) }));
    const res = await call(request("application/grpc-web-text", chunks("")));
    expect(res.status).toBe(405);
    expect(res.header?.get("content-type")).toBeNull();
  });
  it("decodes each padded piece on its own, hands the call only whole groups, and names the fault of a bad body", async () => {
    const given: number[][] = [];
    const call = withGrpcWebText(async (req) => {
      for await (const chunk of req.body as AsyncIterable<Uint8Array>) given.push([...chunk]);
      return { status: 200, header: new Headers({ "content-type": "application/grpc-web+proto" }), body: chunks() };
    });
    // "QQ==" is A, "Qg==" is B, "QUJD" is ABC: pieces padded to two, then one with no padding.
    await call(request("application/grpc-web-text", chunks("QQ", "==Qg==", "QUJD")));
    expect(given).toEqual([
      [0x41, 0x42],
      [0x41, 0x42, 0x43],
    ]);

    // A piece padded, then one without padding, in one group run; and a cut that leaves three
    // characters of a group for the next chunk (they must be decoded once, with that chunk).
    given.length = 0;
    await call(request("application/grpc-web-text", chunks("QQ==QUJD", "AQIDBAU", "=")));
    expect(given).toEqual([
      [0x41, 0x41, 0x42, 0x43],
      [1, 2, 3],
      [4, 5],
    ]);

    const refused = await call(request("application/grpc-web-text", chunks("QQ=!"))).catch((reason: unknown) => reason);
    expect(refused).toBeInstanceOf(ConnectError);
    expect((refused as ConnectError).rawMessage).toBe("the body of a grpc-web-text request is not base64");
  });

  it("leaves a gRPC-Web answer in another content type, and a request without a byte stream, as they are", async () => {
    const json = withGrpcWebText(async () => ({
      status: 200,
      header: new Headers({ "content-type": "application/json", "content-length": "2" }),
      body: chunks("{}"),
    }));
    const res = await json(request("application/grpc-web-text", chunks("AAAA")));
    expect(res.header?.get("content-type")).toBe("application/json");
    expect(res.header?.get("content-length")).toBe("2");
    expect((await readAll(res.body ?? chunks())).map((c) => Buffer.from(c).toString("latin1"))).toEqual(["{}"]);

    for (const body of [null, {}, "AAAA"]) {
      const seen: UniversalServerRequest[] = [];
      const passed = withGrpcWebText(async (req) => {
        seen.push(req);
        return { status: 200, header: new Headers() };
      });
      const req = { ...request("application/grpc-web-text", chunks()), body } as UniversalServerRequest;
      await passed(req);
      expect(seen[0], JSON.stringify(body)).toBe(req);
    }
  });
});
