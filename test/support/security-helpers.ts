/**
 * Helpers of the security suites (fuzz, auth attacks, authz matrix, abuse limits): raw HTTP,
 * Connect and gRPC calls, error code names, and the codes a client's mistake may produce. The
 * services come from the harness (useService), the table snapshots from table-snapshot.ts.
 */
import { request as httpRequest, type IncomingMessage } from "node:http";
import http2 from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";
import { AgentService } from "../../gen/talk/v1/agent_service_pb.js";
import { MessageService } from "../../gen/talk/v1/message_service_pb.js";
import { TalkService } from "../../gen/talk/v1/talk_service_pb.js";
import { frame, parseFrames } from "./envelopes.js";

export const apiServices = [TalkService, MessageService, AgentService] as const;

// biome-ignore lint/suspicious/noExplicitAny: REST and JSON bodies are read loosely on purpose: the tests check the wire shape.
export type Json = any;

export interface HttpReply {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly json: Json;
  /** The raw body bytes read. */
  readonly bytes: Buffer;
  /** True when the read stopped at the timeout (an open stream). */
  readonly timedOut: boolean;
}

export interface HttpOptions {
  readonly token?: string | undefined;
  readonly body?: string | Uint8Array | undefined;
  readonly headers?: Record<string, string>;
  /** Abort after this long (streams); what was read so far is returned. Default 20 s. */
  readonly timeoutMs?: number;
  /** Stop reading after the first complete line (NDJSON streams). */
  readonly firstLine?: boolean;
}

/**
 * One HTTP/1.1 request on its own connection (closed afterwards, so stopping the service never
 * waits for idle keep-alive sockets); reads the answer, up to the first line or the timeout for
 * streams. Rejects when no response head arrives before the timeout.
 */
export function httpCall(baseUrl: string, method: string, path: string, options: HttpOptions = {}): Promise<HttpReply> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token !== undefined) headers["Authorization"] = `Bearer ${options.token}`;
  if (options.body !== undefined) headers["Content-Length"] = String(Buffer.byteLength(options.body));
  return new Promise<HttpReply>((resolve, reject) => {
    const req = httpRequest(`${baseUrl}${path}`, { method, headers, agent: false });
    const chunks: Buffer[] = [];
    let settled = false;
    let response: IncomingMessage | undefined;
    const finish = (timedOut: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      if (response === undefined) {
        reject(new Error(`${method} ${path.slice(0, 120)}: no answer within ${options.timeoutMs ?? 20_000} ms`));
        return;
      }
      const bytes = Buffer.concat(chunks);
      let text = bytes.toString("utf8");
      if (options.firstLine === true && text.includes("\n")) text = text.slice(0, text.indexOf("\n"));
      let json: Json;
      try {
        json = text === "" ? undefined : JSON.parse(text);
      } catch {
        json = undefined;
      }
      const h = new Headers();
      for (const [name, value] of Object.entries(response.headers)) {
        if (value !== undefined) h.set(name, Array.isArray(value) ? value.join(", ") : value);
      }
      resolve({ status: response.statusCode ?? 0, headers: h, text, json, bytes, timedOut });
    };
    const timer = setTimeout(() => finish(true), options.timeoutMs ?? 20_000);
    req.on("response", (res) => {
      response = res;
      res.on("data", (chunk: Buffer) => {
        chunks.push(chunk);
        if (options.firstLine === true && chunk.includes(0x0a)) finish(false);
      });
      res.on("end", () => finish(false));
      res.on("error", () => finish(false));
      res.on("close", () => finish(false));
    });
    req.on("error", (error) => {
      if (settled) return;
      if (response !== undefined) return finish(false);
      settled = true;
      clearTimeout(timer);
      reject(error);
    });
    req.end(options.body === undefined ? undefined : Buffer.from(options.body));
  });
}

/** A Connect unary call with a raw body: POST /<service>/<method>. */
export function connectRaw(
  baseUrl: string,
  procedure: string,
  body: string | Uint8Array,
  contentType: "application/json" | "application/proto",
  token?: string,
  timeoutMs = 20_000,
): Promise<HttpReply> {
  return httpCall(baseUrl, "POST", `/${procedure}`, { token, body, headers: { "Content-Type": contentType }, timeoutMs });
}

export interface GrpcReply {
  readonly grpcStatus: number | undefined;
  readonly grpcMessage: string;
  readonly messages: number;
}

/** A gRPC call over h2c with a raw protobuf message (framed here); reads up to the trailers. */
export function grpcRaw(baseUrl: string, procedure: string, message: Uint8Array, token?: string, timeoutMs = 10_000): Promise<GrpcReply> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(baseUrl);
    session.on("error", () => undefined);
    const headers: http2.OutgoingHttpHeaders = {
      ":method": "POST",
      ":path": `/${procedure}`,
      "content-type": "application/grpc+proto",
      te: "trailers",
    };
    if (token !== undefined) headers["authorization"] = `Bearer ${token}`;
    const req = session.request(headers);
    let status: number | undefined;
    let grpcMessage = "";
    let data = Buffer.alloc(0);
    const timer = setTimeout(() => {
      req.close();
      session.destroy();
      resolve({ grpcStatus: status, grpcMessage, messages: -1 });
    }, timeoutMs);
    const take = (h: http2.IncomingHttpHeaders) => {
      if (h["grpc-status"] !== undefined) status = Number(h["grpc-status"]);
      if (typeof h["grpc-message"] === "string") grpcMessage = decodeURIComponent(h["grpc-message"]);
    };
    req.on("response", take);
    req.on("trailers", take);
    req.on("data", (chunk: Buffer) => (data = Buffer.concat([data, chunk])));
    req.on("error", (error) => {
      clearTimeout(timer);
      session.destroy();
      reject(error);
    });
    req.on("close", () => {
      clearTimeout(timer);
      session.close();
      resolve({ grpcStatus: status, grpcMessage, messages: parseFrames(data).frames.length });
    });
    req.end(frame(message));
  });
}

/** The code of a call's failure ("ok" when it succeeded). */
export async function codeOf(call: Promise<unknown>): Promise<string> {
  try {
    await call;
    return "ok";
  } catch (reason) {
    return connectCodeName(ConnectError.from(reason).code);
  }
}

/** The Connect protocol's name of a code, e.g. "not_found". */
export function connectCodeName(code: Code): string {
  return Code[code].replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
}

/** The Connect/REST error codes a client's mistake may produce; never internal, unknown or data_loss. */
export const clientErrorCodes = new Set([
  "canceled",
  "invalid_argument",
  "not_found",
  "already_exists",
  "permission_denied",
  "unauthenticated",
  "resource_exhausted",
  "failed_precondition",
  "out_of_range",
  "unimplemented",
  "aborted",
]);

/** HTTP statuses a client's mistake may produce. */
export const clientErrorStatuses = new Set([400, 401, 403, 404, 405, 408, 409, 411, 413, 415, 429, 431, 499, 501, 505]);

export const withTimeout = <T>(promise: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([promise, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms))]);
