import { createRouterTransport, type Interceptor, type ServiceImplSpec } from "@connectrpc/connect";
import type { DescService } from "@bufbuild/protobuf";
import { routesOf } from "../rpc/index.js";
import { bearerToken } from "./bearer-token.js";
import { createCors } from "./cors.js";
import type { RequestHandler } from "./listener.js";
import type { HeaderAuthentication } from "./grpc-direct.js";
import { createOpenApiEndpoint } from "./openapi-endpoint.js";
import { createRestHandler } from "./rest/transcoder.js";
import { createRpcAdapter } from "./rpc-adapter.js";
import { createStaticFiles } from "./static-files.js";

export interface HandlerOptions {
  /** The services whose google.api.http annotations are served as REST. */
  readonly restServices: readonly DescService[];
  /** Every service served, with its handlers. */
  readonly services: readonly ServiceImplSpec[];
  readonly interceptors: Interceptor[];
  /** The largest request message accepted, in bytes. */
  readonly readMaxBytes: number;
  /** RPCs are authenticated from their headers before their bodies are read. */
  readonly authenticate: HeaderAuthentication;
  readonly corsOrigins: readonly string[];
  /** Plain-HTTP endpoints tried first (health; metrics live on the operator listener); true when answered. */
  readonly operator: (req: { method?: string | undefined; url?: string | undefined }, res: Parameters<RequestHandler>[1]) => boolean;
  /** The web console's built files; the console is served at / when they exist. */
  readonly webRoot: string;
  /** gen/openapi.json, served at /v1.0/openapi.json. */
  readonly openApiFile: URL | string;
}

/**
 * The HTTP handler, in order: CORS, the operator endpoints, the OpenAPI document, the REST paths of the
 * google.api.http annotations, the web console's files, then gRPC, gRPC-Web and Connect. A `?token=`
 * query parameter stands in for the Authorization header, as the spec's curl examples use it.
 */
export function createHandler(options: HandlerOptions): RequestHandler {
  const connect = createRpcAdapter(options.services, {
    interceptors: options.interceptors,
    readMaxBytes: options.readMaxBytes,
    authenticate: options.authenticate,
    // JSON speaks the spec's field names and shows every field, also empty ones.
    jsonOptions: { useProtoFieldName: true, alwaysEmitImplicit: true, ignoreUnknownFields: true },
  });
  const rest = createRestHandler({
    services: options.restServices,
    transport: createRouterTransport(routesOf(options.services), {
      router: { interceptors: options.interceptors, readMaxBytes: options.readMaxBytes },
      transport: { readMaxBytes: options.readMaxBytes, writeMaxBytes: options.readMaxBytes },
    }),
    maxBodyBytes: options.readMaxBytes,
  });
  const cors = createCors(options.corsOrigins);
  const web = createStaticFiles(options.webRoot);
  const openApi = createOpenApiEndpoint(options.openApiFile);
  return (req, res) => {
    if (cors(req, res) || options.operator(req, res) || openApi(req, res)) return;
    // RPC paths ("/<package>.<Service>/<Method>") go straight to the RPC handlers.
    if (req.url !== undefined && rpcPath.test(req.url)) return connect(req, res);
    tokenFromQuery(req);
    if (rest(req, res) || web(req, res)) return;
    connect(req, res);
  };
}

const rpcPath = /^\/[a-z][\w]*(\.[a-z][\w]*)*\.[A-Z]\w*\/[A-Z]\w*$/;

function tokenFromQuery(req: { url?: string; headers: Record<string, string | string[] | undefined> }): void {
  const found = bearerToken(req.headers["authorization"], req.url);
  if (found.from !== "query") return;
  // Anything that cannot be a token still fails as a malformed one, not as a missing one.
  req.headers["authorization"] = `Bearer ${found.token ?? "malformed"}`;
}
