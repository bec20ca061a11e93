/**
 * REST transcoding: requests to the google.api.http paths become calls of the RPCs, through
 * the same router (interceptors, auth, errors) as gRPC and Connect. JSON is the spec's dialect
 * (spec-dialect.ts: proto field names, the spec's timestamps); errors come back as
 * {"code","message"} with the HTTP status of their gRPC code; a server-streaming RPC answers
 * newline-delimited JSON, one message per line.
 */
import {
  fromJson,
  type DescMethodServerStreaming,
  type DescMethodUnary,
  type DescService,
  type JsonValue,
  type Message,
} from "@bufbuild/protobuf";
import { Code, ConnectError, type Transport } from "@connectrpc/connect";
import { createAsyncIterable } from "@connectrpc/connect/protocol";
import { randomUUID } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import { codeName } from "../../rpc/errors.js";
import { httpStatusOf } from "../http-status.js";
import { restBindings, type RestBinding } from "./bindings.js";
import { matchPathTemplate } from "./path-template.js";
import { requestJson } from "./request-json.js";
import { fromSpecJson, toSpecJson } from "./spec-dialect.js";

/** The parts of a Node HTTP/1 or HTTP/2 request and response that transcoding uses. */
export interface RestRequest extends AsyncIterable<Buffer | string> {
  readonly method?: string | undefined;
  readonly url?: string | undefined;
  readonly httpVersionMajor: number;
  readonly headers: IncomingHttpHeaders;
}
export interface RestResponse {
  readonly headersSent: boolean;
  writeHead(status: number, headers: Record<string, string>): unknown;
  /** False when the socket's buffer is full: wait for "drain". */
  write(chunk: string): boolean;
  end(chunk: string): unknown;
  once(event: "close" | "drain", listener: () => void): unknown;
  off(event: "close" | "drain", listener: () => void): unknown;
}

/** Resolves once the response can take more, has closed, or the call was aborted. */
function drained(res: RestResponse, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      signal.removeEventListener("abort", done);
      resolve();
    };
    res.once("drain", done);
    res.once("close", done);
    signal.addEventListener("abort", done, { once: true });
  });
}

export interface RestOptions {
  readonly services: readonly DescService[];
  /** Runs the RPCs: a router transport with the service's interceptors. */
  readonly transport: Transport;
  readonly maxBodyBytes: number;
}

/** Headers that describe the HTTP exchange itself, not the call. */
const notForwarded = new Set([
  "content-type",
  "content-length",
  "connection",
  "host",
  "transfer-encoding",
  "accept-encoding",
  "keep-alive",
]);

function sendJson(res: RestResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify(body));
}

function errorBody(error: ConnectError): { code: string; message: string } {
  return { code: codeName(error.code), message: error.rawMessage };
}

function sendError(res: RestResponse, error: ConnectError, headers: Record<string, string> = {}): void {
  const retryAfter = error.metadata.get("retry-after");
  sendJson(res, httpStatusOf(error.code), errorBody(error), retryAfter === null ? headers : { ...headers, "retry-after": retryAfter });
}

async function readBody(req: RestRequest, max: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    size += buffer.length;
    if (size > max) throw new ConnectError(`request body larger than ${max} bytes`, Code.ResourceExhausted);
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function forwardedHeaders(headers: IncomingHttpHeaders): Headers {
  const forwarded = new Headers();
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || name.startsWith(":") || notForwarded.has(name)) continue;
    forwarded.set(name, Array.isArray(value) ? value.join(", ") : value);
  }
  return forwarded;
}

/**
 * Builds the REST handler. It returns false for a request that matches no binding, so the
 * caller can hand it on (to Connect, or a 404).
 */
/** "v1.0" of "/v1.0/talks?x=1". */
function firstSegment(path: string): string {
  const end = path.slice(1).search(/[/?]/);
  return end < 0 ? path.slice(1) : path.slice(1, end + 1);
}

export function createRestHandler(options: RestOptions): (req: RestRequest, res: RestResponse) => boolean {
  const bindings = restBindings(options.services);
  const prefixes = new Set(bindings.map((b) => b.template.source.split("/")[1]));
  return (req, res) => {
    // Most requests are RPCs: their first path segment (a service name) rules REST out cheaply.
    if (!prefixes.has(firstSegment(req.url ?? "/"))) return false;
    let url: URL;
    try {
      url = new URL(req.url ?? "/", "http://localhost");
    } catch {
      return false;
    }
    let pathFields: Map<string, string> | null = null;
    const binding = bindings.find(
      (b) => b.httpMethod === req.method && (pathFields = matchPathTemplate(b.template, url.pathname)) !== null,
    );
    if (binding === undefined || pathFields === null) {
      // Under the REST prefix every miss is answered here, in the same JSON as other errors.
      if (!prefixes.has(url.pathname.split("/")[1])) return false;
      const allowed = [...new Set(bindings.filter((b) => matchPathTemplate(b.template, url.pathname) !== null).map((b) => b.httpMethod))];
      if (allowed.length > 0) {
        sendJson(
          res,
          405,
          { code: codeName(Code.Unimplemented), message: `${req.method ?? ""} is not allowed on ${url.pathname}` },
          { allow: allowed.join(", ") },
        );
      } else {
        sendError(res, new ConnectError(`no such path: ${url.pathname}`, Code.NotFound));
      }
      return true;
    }
    const fields: Map<string, string> = pathFields;
    // Every REST call has a request id, echoed back in the answer, errors included.
    const requestId = (typeof req.headers["x-request-id"] === "string" ? req.headers["x-request-id"] : randomUUID()).slice(0, 128);
    req.headers["x-request-id"] = requestId;
    const abort = new AbortController();
    res.once("close", () => abort.abort());
    void transcode(options, binding, req, res, url, fields, abort.signal).catch((error: unknown) => {
      const connectError = ConnectError.from(error);
      if (!res.headersSent) {
        // A refused body may still be arriving: on HTTP/1.1 the connection cannot be reused.
        const close: Record<string, string> =
          connectError.code === Code.ResourceExhausted && req.httpVersionMajor === 1 ? { connection: "close" } : {};
        sendError(res, connectError, { "x-request-id": requestId, ...close });
      } else res.end(`${JSON.stringify({ error: errorBody(connectError) })}\n`);
    });
    return true;
  };
}

async function transcode(
  options: RestOptions,
  binding: RestBinding,
  req: RestRequest,
  res: RestResponse,
  url: URL,
  pathFields: Map<string, string>,
  signal: AbortSignal,
): Promise<void> {
  const { method } = binding;
  const bodyText = await readBody(req, options.maxBodyBytes);
  let input: Message;
  try {
    // Unknown keys are refused at every depth (requestJson names those at the top).
    const json = fromSpecJson(method.input, requestJson(binding, bodyText, url.searchParams, pathFields));
    input = fromJson(method.input, json, { ignoreUnknownFields: false });
  } catch (error) {
    if (error instanceof ConnectError) throw error;
    throw new ConnectError(`invalid request: ${error instanceof Error ? error.message : String(error)}`, Code.InvalidArgument);
  }
  const headers = forwardedHeaders(req.headers);
  // Answers speak the spec's dialect (spec-dialect.ts), not proto3 JSON.
  const output = (message: Parameters<typeof toSpecJson>[1]): JsonValue => {
    const json = toSpecJson(method.output, message);
    return binding.responseBody === "" ? json : (json[binding.responseBody] ?? null);
  };
  const echo = { "x-request-id": headers.get("x-request-id") ?? "" };
  if (method.methodKind === "unary") {
    const response = await options.transport.unary(method as DescMethodUnary, signal, undefined, headers, input);
    sendJson(res, 200, output(response.message), echo);
    return;
  }
  if (method.methodKind === "server_streaming") {
    const response = await options.transport.stream(
      method as DescMethodServerStreaming,
      signal,
      undefined,
      headers,
      createAsyncIterable([input]),
    );
    const ndjson = { "content-type": "application/x-ndjson", "cache-control": "no-store", ...echo };
    for await (const message of response.message) {
      if (signal.aborted) return;
      if (!res.headersSent) res.writeHead(200, ndjson);
      // While the socket is full nothing more is pulled: a reader that stops falls behind and is
      // cut off with RESOURCE_EXHAUSTED (the last line), as on gRPC and Connect.
      if (!res.write(`${JSON.stringify(output(message))}\n`)) await drained(res, signal);
    }
    if (signal.aborted) return;
    if (!res.headersSent) res.writeHead(200, ndjson);
    res.end("");
    return;
  }
  throw new ConnectError(`${method.name} has no REST form`, Code.Unimplemented);
}
