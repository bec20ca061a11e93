import { createRouterTransport, type ConnectRouter, type Interceptor } from "@connectrpc/connect";
import type { DescService } from "@bufbuild/protobuf";
import { createCors } from "./cors.js";
import type { RequestHandler } from "./listener.js";
import type { HeaderAuthentication } from "./grpc-direct.js";
import { createRestHandler } from "./rest/transcoder.js";
import { createRpcAdapter } from "./rpc-adapter.js";
import { createStaticFiles } from "./static-files.js";

export interface HandlerOptions {
  /** The services whose google.api.http annotations are served as REST. */
  readonly restServices: readonly DescService[];
  readonly routes: (router: ConnectRouter) => void;
  readonly interceptors: Interceptor[];
  /** The largest request message accepted, in bytes. */
  readonly readMaxBytes: number;
  /** RPCs are authenticated from their headers before their bodies are read. */
  readonly authenticate: HeaderAuthentication;
  readonly corsOrigins: readonly string[];
  /** Plain-HTTP endpoints (health, metrics) tried first; true when answered. */
  readonly operator: (req: { method?: string | undefined; url?: string | undefined }, res: Parameters<RequestHandler>[1]) => boolean;
  /** The web console's built files; the console is served at / when they exist. */
  readonly webRoot: string;
}

/**
 * The HTTP handler, in order: CORS, the operator endpoints, the REST paths of the
 * google.api.http annotations, the web console's files, then gRPC, gRPC-Web and Connect. A `?token=`
 * query parameter stands in for the Authorization header, as the spec's curl examples use it.
 */
export function createHandler(options: HandlerOptions): RequestHandler {
  const connect = createRpcAdapter(options.routes, {
    interceptors: options.interceptors,
    readMaxBytes: options.readMaxBytes,
    authenticate: options.authenticate,
    // JSON speaks the spec's field names and shows every field, also empty ones.
    jsonOptions: { useProtoFieldName: true, alwaysEmitImplicit: true, ignoreUnknownFields: true },
  });
  const rest = createRestHandler({
    services: options.restServices,
    transport: createRouterTransport(options.routes, {
      router: { interceptors: options.interceptors, readMaxBytes: options.readMaxBytes },
      transport: { readMaxBytes: options.readMaxBytes, writeMaxBytes: options.readMaxBytes },
    }),
    maxBodyBytes: options.readMaxBytes,
  });
  const cors = createCors(options.corsOrigins);
  const web = createStaticFiles(options.webRoot);
  return (req, res) => {
    if (cors(req, res) || options.operator(req, res)) return;
    // RPC paths ("/<package>.<Service>/<Method>") go straight to the RPC handlers.
    if (req.url !== undefined && rpcPath.test(req.url)) return connect(req, res);
    tokenFromQuery(req);
    if (rest(req, res) || web(req, res)) return;
    connect(req, res);
  };
}

const rpcPath = /^\/[a-z][\w]*(\.[a-z][\w]*)*\.[A-Z]\w*\/[A-Z]\w*$/;

function tokenFromQuery(req: { url?: string; headers: Record<string, string | string[] | undefined> }): void {
  if (req.headers["authorization"] !== undefined || req.url === undefined || !req.url.includes("token=")) return;
  const query = req.url.indexOf("?");
  if (query < 0) return;
  const token = new URLSearchParams(req.url.slice(query + 1)).get("token");
  if (token === null || token === "") return;
  // A JWT is base64url and dots; anything else cannot be a header value and is not a token.
  req.headers["authorization"] = `Bearer ${/^[A-Za-z0-9_.-]+$/.test(token) ? token : "malformed"}`;
}
