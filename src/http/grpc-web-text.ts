/**
 * gRPC-Web's text mode (application/grpc-web-text): the binary protocol's frames, base64
 * encoded both ways, which browser clients on XMLHttpRequest need to read a server stream as it
 * arrives. connect-node serves the binary form only, so a text call goes to it as binary: the
 * request body is decoded as it is read, and each chunk of the answer (a data frame or the
 * trailer frame) is encoded on its own as it leaves, padded, so that nothing is held back
 * waiting for the next one (the client's decoder takes padding inside the text). A request
 * body may likewise come as several pieces, each padded on its own.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import type { UniversalServerRequest, UniversalServerResponse } from "@connectrpc/connect/protocol";

type UniversalCall = (req: UniversalServerRequest) => Promise<UniversalServerResponse>;

/** The text form's content types (protobuf only, as in the gRPC-Web spec). */
const textContentType = /^application\/grpc-web-text(\+proto)?$/i;

/** A character that base64 does not use. */
const notBase64Character = /[^A-Za-z0-9+/=]/;

/** Serves `call` also in gRPC-Web's text mode. */
export function withGrpcWebText(call: UniversalCall): UniversalCall {
  return async (req) => {
    const contentType = req.header.get("content-type") ?? "";
    if (!textContentType.test(contentType) || !isByteStream(req.body)) return call(req);
    const header = new Headers(req.header);
    header.set("content-type", "application/grpc-web+proto");
    // The length is the text's; connect reads the decoded frames.
    header.delete("content-length");
    const res = await call({ ...req, header, body: decoded(req.body) });
    if (res.body === undefined || res.header?.get("content-type") !== "application/grpc-web+proto") return res;
    res.header.set("content-type", "application/grpc-web-text+proto");
    res.header.delete("content-length");
    return { ...res, body: encoded(res.body) };
  };
}

function isByteStream(body: UniversalServerRequest["body"]): body is AsyncIterable<Uint8Array> {
  return typeof body === "object" && body !== null && Symbol.asyncIterator in body;
}

/** The bytes of a base64 body, as whole groups arrive; text that is not base64 is the client's fault. */
async function* decoded(body: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  let pending = "";
  for await (const chunk of body) {
    const text = pending + Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString("latin1");
    const whole = text.length - (text.length % 4);
    pending = text.slice(whole);
    if (whole > 0) yield fromBase64(text.slice(0, whole));
  }
  if (pending !== "") throw notBase64();
}

/**
 * Decodes whole groups (the length is a multiple of 4), with padding at the end of any group,
 * where a piece a client encoded on its own ended: each piece is decoded on its own.
 */
function fromBase64(text: string): Buffer {
  if (notBase64Character.test(text)) throw notBase64();
  const pieces: Buffer[] = [];
  let start = 0;
  for (const padding of text.matchAll(/=+/g)) {
    const end = padding.index + padding[0].length;
    if (padding[0].length > 2 || end % 4 !== 0) throw notBase64();
    pieces.push(Buffer.from(text.slice(start, end), "base64"));
    start = end;
  }
  if (start === 0) return Buffer.from(text, "base64");
  pieces.push(Buffer.from(text.slice(start), "base64"));
  return Buffer.concat(pieces);
}

function notBase64(): ConnectError {
  return new ConnectError("the body of a grpc-web-text request is not base64", Code.InvalidArgument);
}

/** Each chunk as padded base64 of its own, written as it comes. */
async function* encoded(body: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  for await (const chunk of body) {
    yield Buffer.from(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString("base64"), "latin1");
  }
}
