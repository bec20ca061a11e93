/**
 * The one codec of length-prefixed messages the suites build and read by hand: gRPC messages,
 * Connect streaming envelopes (with the end-stream message) and gRPC-Web trailer frames all share
 * the layout flag byte, uint32 big-endian length, payload.
 */

/** The payload is compressed (grpc-encoding / connect-content-encoding). */
export const compressedFlag = 0x01;
/** Connect streaming: the last envelope, a JSON object with `error` and `metadata`. */
export const endStreamFlag = 0x02;
/** gRPC-Web: the trailers, as HTTP/1 header lines. */
export const trailerFlag = 0x80;

export interface FrameOptions {
  readonly flags?: number;
  /** The length written in the prefix; by default the payload's real length. */
  readonly declared?: number;
}

/** One message with its 5-byte prefix; a string payload is sent as UTF-8. */
export function frame(payload: Uint8Array | string, options: FrameOptions = {}): Buffer {
  const bytes = typeof payload === "string" ? Buffer.from(payload, "utf8") : payload;
  return Buffer.concat([frameHead(options.declared ?? bytes.length, options.flags ?? 0), bytes]);
}

/** The 5-byte prefix alone, declaring `length` bytes (to send a body slowly, or never). */
export function frameHead(length: number, flags = 0): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt8(flags, 0);
  head.writeUInt32BE(length, 1);
  return head;
}

export interface Frame {
  readonly flags: number;
  /** The length the prefix declared. */
  readonly declared: number;
  /** The bytes that followed, at most `declared` of them. */
  readonly payload: Buffer;
  /** The body ended before `declared` bytes. */
  readonly truncated: boolean;
}

/**
 * Every message of a body, in order; the last one may be truncated. `rest` holds the bytes after
 * the last whole prefix (fewer than 5), which a well-formed body does not have.
 */
export function parseFrames(body: Uint8Array): { frames: Frame[]; rest: Buffer } {
  const bytes = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  const frames: Frame[] = [];
  let at = 0;
  while (at + 5 <= bytes.length) {
    const flags = bytes.readUInt8(at);
    const declared = bytes.readUInt32BE(at + 1);
    const payload = bytes.subarray(at + 5, at + 5 + declared);
    frames.push({ flags, declared, payload, truncated: payload.length < declared });
    at += 5 + declared;
  }
  return { frames, rest: bytes.subarray(Math.min(at, bytes.length)) };
}

/** Decodes a body as it arrives in chunks: push() returns the messages completed by a chunk. */
export class FrameReader {
  #buffer = Buffer.alloc(0);

  push(chunk: Uint8Array): Frame[] {
    this.#buffer = Buffer.concat([this.#buffer, chunk]);
    const complete: Frame[] = [];
    let used = 0;
    for (const f of parseFrames(this.#buffer).frames) {
      if (f.truncated) break;
      complete.push({ ...f, payload: Buffer.from(f.payload) });
      used += 5 + f.declared;
    }
    this.#buffer = this.#buffer.subarray(used);
    return complete;
  }
}

/** The data messages of a body (neither end-stream nor trailers). */
export const dataFrames = (frames: readonly Frame[]): Frame[] => frames.filter((f) => (f.flags & (endStreamFlag | trailerFlag)) === 0);

export interface ConnectEndStream {
  readonly error?: { readonly code?: string; readonly message?: string };
  readonly metadata?: Record<string, unknown>;
}

/**
 * The end-stream message of a Connect streaming body: undefined when there is none, "unparsable"
 * when its payload is not JSON.
 */
export function connectEndStream(frames: readonly Frame[]): ConnectEndStream | "unparsable" | undefined {
  const end = frames.find((f) => (f.flags & endStreamFlag) !== 0);
  if (end === undefined) return undefined;
  try {
    return JSON.parse(end.payload.toString("utf8")) as ConnectEndStream;
  } catch {
    return "unparsable";
  }
}

/** A gRPC-Web trailer frame carrying `trailers` as `name: value` lines. */
export function trailerFrame(trailers: Record<string, string>): Buffer {
  const text = Object.entries(trailers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join("");
  return frame(Buffer.from(text, "latin1"), { flags: trailerFlag });
}

/** The trailers of a gRPC-Web body (names in lower case), or undefined when it has no trailer frame. */
export function grpcWebTrailers(frames: readonly Frame[]): Record<string, string> | undefined {
  const trailer = frames.find((f) => (f.flags & trailerFlag) !== 0);
  if (trailer === undefined) return undefined;
  const trailers: Record<string, string> = {};
  for (const line of trailer.payload.toString("latin1").split(/\r?\n/)) {
    const colon = line.indexOf(":");
    if (colon > 0) trailers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return trailers;
}
