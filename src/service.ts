/**
 * The service's wiring: storage, bus, domain, RPC and the listener, started and stopped as one.
 */
import { loadOrCreateSecret } from "./auth/secret.js";
import { createVerifier } from "./auth/verifier.js";
import { ConfigError, type Config } from "./config.js";
import { Callers } from "./domain/agents.js";
import type { DomainDeps } from "./domain/deps.js";
import { LocalBus } from "./events/local-bus.js";
import { createHandler } from "./http/handler.js";
import { listen } from "./http/listener.js";
import { authInterceptor, errorInterceptor } from "./rpc/interceptors.js";
import { routes } from "./rpc/index.js";
import { openDatabase, type Database } from "./store/database.js";

export interface Service {
  readonly port: number;
  /** http://127.0.0.1:<port> */
  readonly url: string;
  /** The HS256 secret in use (generated on the embedded default), if any. */
  readonly secret: string | undefined;
  readonly database: Database;
  readonly deps: DomainDeps;
  close(): Promise<void>;
}

export interface ServiceOptions {
  /** Where unexpected (INTERNAL) errors are reported; stderr by default. */
  readonly onInternalError?: (error: unknown, procedure: string) => void;
}

/** The HS256 secret: configured, or on the embedded default made once in the data dir. */
function resolveSecret(config: Config): string | undefined {
  if (config.auth.secret !== undefined) return config.auth.secret;
  if (config.database.kind === "pglite") return loadOrCreateSecret(config.dataDir);
  if (config.auth.jwksUrl === undefined) {
    throw new ConfigError("TALKHUB_JWT_SECRET", "set it (or TALKHUB_JWKS_URL) when DATABASE_URL is set");
  }
  return undefined;
}

export async function startService(config: Config, options: ServiceOptions = {}): Promise<Service> {
  const secret = resolveSecret(config);
  const verify = createVerifier({ ...config.auth, secret });
  const database = await openDatabase(config.database);
  const bus = new LocalBus();
  const deps: DomainDeps = { db: database.db, events: bus, now: () => new Date() };
  const callers = new Callers(deps);
  const onInternal =
    options.onInternalError ??
    ((error: unknown, procedure: string) => console.error(`internal error in ${procedure}:`, error));
  const handler = createHandler({
    routes: routes({ deps, callers }),
    interceptors: [errorInterceptor(onInternal), authInterceptor(verify, callers)],
    readMaxBytes: 4 * 1024 * 1024,
  });
  let listener;
  try {
    listener = await listen(handler, config.host, config.port);
  } catch (error) {
    await database.close();
    throw error;
  }
  const server = listener;
  return {
    port: server.port,
    url: `http://127.0.0.1:${server.port}`,
    secret,
    database,
    deps,
    close: async () => {
      await server.close();
      await database.close();
    },
  };
}
