/**
 * The service's configuration, read from the environment in this one place. Every variable is
 * documented in docs/configuration.md.
 */
import type { Rate, WriteClass } from "./domain/write/write-limits.js";

/** Where the data lives: Postgres when DATABASE_URL is set, embedded PGlite otherwise. */
export type DatabaseConfig =
  | {
      readonly kind: "postgres";
      readonly url: string;
      readonly poolSize: number;
      /** How long opening keeps retrying an unreachable server before giving up; 0 tries once. */
      readonly startupTimeoutMs?: number;
    }
  /** dataDir null keeps the embedded database in memory (tests). */
  | { readonly kind: "pglite"; readonly dataDir: string | null };

export interface AuthConfig {
  /** HS256 secret. When unset on the embedded default, one is created in the data dir. */
  readonly secret: string | undefined;
  /** A JWKS URL whose keys (RS256, ES256, EdDSA...) also verify tokens. */
  readonly jwksUrl: string | undefined;
  /** When set, tokens must carry this "iss". */
  readonly issuer: string | undefined;
  /** When set, tokens must carry this "aud". */
  readonly audience: string | undefined;
  /** Accept tokens without "exp" (TALKHUB_ALLOW_TOKENS_WITHOUT_EXP); refused when unset. */
  readonly allowTokensWithoutExp?: boolean | undefined;
}

/** Live delivery: streams, the bus and the event log's retention. */
export interface LiveConfig {
  /** Subject prefix on NATS; deployments (and test runs) sharing a NATS use different ones. */
  readonly natsPrefix: string;
  /** How long start-up keeps trying to reach NATS before giving up; 30 s when unset. */
  readonly natsStartupTimeoutMs?: number;
  /** A heartbeat goes down an idle stream this often. */
  readonly heartbeatMs: number;
  /** How often watched talks are checked for events whose bus message was lost. */
  readonly gapCheckMs: number;
  /**
   * How often a feed re-reads its agent's memberships (talks joined through a process whose bus
   * message never came) and the callers of open streams are re-checked; max(gapCheckMs, 5 s)
   * when unset.
   */
  readonly membershipCheckMs?: number;
  /** Events a stream may fall behind before it is cut off with RESOURCE_EXHAUSTED. */
  readonly streamMaxQueued: number;
  /** How long the event log keeps events (resuming from older positions is OUT_OF_RANGE). */
  readonly retentionDays: number;
  /**
   * A process trusts the directory entry of a caller it has seen for this long: an agent
   * deleted on another process is refused here within it.
   */
  readonly callerRecheckMs: number;
}

export const defaultLiveConfig: LiveConfig = {
  natsPrefix: "talkhub",
  heartbeatMs: 15_000,
  gapCheckMs: 1_000,
  streamMaxQueued: 1_000,
  retentionDays: 30,
  callerRecheckMs: 30_000,
};

/** The HTTP surface: browsers, limits, logs. */
export interface HttpConfig {
  /** Origins browsers may call from; "*" for any. */
  readonly corsOrigins: readonly string[];
  /** The largest request (message or REST body) accepted, in bytes. */
  readonly maxRequestBytes: number;
  /** Concurrent streams on one HTTP/2 connection. */
  readonly maxStreamsPerConnection: number;
  /**
   * An idle connection is closed after this long: HTTP/1.1 keep-alive between requests, HTTP/2
   * with no open stream.
   */
  readonly idleTimeoutMs: number;
  /**
   * The time a client has to send an HTTP/1.1 request's headers; also a new connection's first
   * bytes, and an HTTP/2 connection's first request.
   */
  readonly headersTimeoutMs: number;
  /**
   * The time a client has to send a whole HTTP/1.1 request, headers and body, and the body of
   * an HTTP/2 request not authenticated from its headers. The response (a stream, a WebSocket)
   * is not limited by it.
   */
  readonly requestTimeoutMs: number;
  /**
   * Request body bytes one HTTP/2 connection may hold for requests not authenticated from
   * their headers (open services, REST); past it the stream is reset.
   */
  readonly unauthenticatedBytesPerConnection: number;
  /** nghttp2's memory per HTTP/2 connection, in MiB; past it new streams are refused. */
  readonly maxSessionMemoryMb: number;
  /** pino level: fatal, error, warn, info, debug, trace or silent. */
  readonly logLevel: string;
}

export const defaultHttpConfig: HttpConfig = {
  corsOrigins: ["*"],
  maxRequestBytes: 4 * 1024 * 1024,
  maxStreamsPerConnection: 1_000,
  idleTimeoutMs: 65_000,
  headersTimeoutMs: 20_000,
  requestTimeoutMs: 60_000,
  unauthenticatedBytesPerConnection: 8 * 1024 * 1024,
  maxSessionMemoryMb: 64,
  logLevel: "silent",
};

/** Per-agent abuse limits; a rate of 0 turns one off. */
export interface AbuseLimits {
  /** Writes per class, shared by every process on the database (see domain/write/write-limits.ts). */
  readonly writes: Readonly<Record<WriteClass, Rate>>;
  /** Open streams (WatchTalk, WatchEvents, WebSocket subscriptions) per agent and process. */
  readonly streamsPerAgent: number;
}

const unlimited: Rate = { perSecond: 0, burst: 0 };

/** No limits: the programmatic default (tests); readConfig applies the production defaults. */
export const noAbuseLimits: AbuseLimits = {
  writes: {
    sends: unlimited,
    talkCreates: unlimited,
    participants: unlimited,
    reactions: unlimited,
    edits: unlimited,
    deletes: unlimited,
    talkStatus: unlimited,
    agentAdmin: unlimited,
  },
  streamsPerAgent: 0,
};

/** The operator listener: /metrics, /healthz and /readyz, away from the public port. */
export interface OperatorConfig {
  readonly host: string;
  /** 0 picks a free port (tests). */
  readonly port: number;
}

/** Loopback only: metrics tell the load and the tenants' activity, not for the internet. */
export const defaultOperatorConfig: OperatorConfig = { host: "127.0.0.1", port: 9090 };

/** A certificate and its key, PEM files: the public port then speaks TLS only (h2 and HTTP/1.1 by ALPN). */
export interface TlsConfig {
  /** TALKHUB_TLS_CERT: the certificate, then any intermediates. */
  readonly certFile: string;
  /** TALKHUB_TLS_KEY: its private key, unencrypted. */
  readonly keyFile: string;
}

export interface Config {
  readonly host: string;
  /** 0 picks a free port (tests). */
  readonly port: number;
  /** TLS on the public port; plaintext (HTTP/1.1 and h2c) when undefined. */
  readonly tls?: TlsConfig | undefined;
  readonly database: DatabaseConfig;
  readonly auth: AuthConfig;
  /** NATS server(s) for live events between processes; an in-process bus when unset. */
  readonly natsUrl: string | undefined;
  /** The directory for the embedded database and the generated secret. */
  readonly dataDir: string;
  /** Defaults to defaultLiveConfig. */
  readonly live?: LiveConfig;
  /** Defaults to defaultHttpConfig (which logs nothing). */
  readonly http?: HttpConfig;
  /** Defaults to noAbuseLimits. */
  readonly abuse?: AbuseLimits;
  /** null turns the operator listener off; undefined is a free port on 127.0.0.1 (tests). */
  readonly operator?: OperatorConfig | null;
  /**
   * Whether the service migrates the schema at start (the default); when false it refuses to
   * start on an older schema (TALKHUB_MIGRATE_AT_START=false, for deploys that run `npm run migrate`).
   */
  readonly migrateAtStart?: boolean;
}

/** A configuration value that cannot be used; the message names the variable. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`${variable}: ${problem}`);
    this.name = "ConfigError";
  }
}

/** Every value that cannot be used at once, each a ConfigError naming its variable. */
export class InvalidConfig extends ConfigError {
  constructor(readonly problems: readonly [ConfigError, ...ConfigError[]]) {
    super(problems[0].variable, "");
    this.message = problems.map((p) => p.message).join("; ");
    this.name = "InvalidConfig";
  }
}

type Env = Readonly<Record<string, string | undefined>>;

function optional(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value === "" ? undefined : value;
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = optional(env, name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(name, `expected an integer from ${min} to ${max}, got "${raw}"`);
  }
  return value;
}

function boolean(env: Env, name: string, fallback: boolean): boolean {
  const raw = optional(env, name)?.toLowerCase();
  if (raw === undefined) return fallback;
  if (raw === "true" || raw === "1") return true;
  if (raw === "false" || raw === "0") return false;
  throw new ConfigError(name, `expected true or false, got "${raw}"`);
}

function url(env: Env, name: string, protocols: readonly string[]): string | undefined {
  const raw = optional(env, name);
  if (raw === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(name, `not a URL: "${raw}"`);
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(name, `expected a ${protocols.join(" or ")} URL`);
  }
  return raw;
}

/** A non-negative rate, fractions allowed ("0.5": one every two seconds). */
function decimal(env: Env, name: string, fallback: number, max: number): number {
  const raw = optional(env, name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!/^[0-9]+(\.[0-9]+)?$/.test(raw) || !Number.isFinite(value) || value > max) {
    throw new ConfigError(name, `expected a number from 0 to ${max}, got "${raw}"`);
  }
  return value;
}

/** A write class's limit: `<prefix>_RATE` per second (or per minute) and `<prefix>_BURST`. */
function writeRate(env: Env, prefix: string, defaults: { rate: number; burst: number }, perMinute = false): Rate {
  const rate = decimal(env, `${prefix}_RATE`, defaults.rate, 1_000_000);
  return {
    perSecond: perMinute ? rate / 60 : rate,
    burst: integer(env, `${prefix}_BURST`, defaults.burst, 1, 1_000_000),
  };
}

const logLevels = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

function logLevel(value: string): string {
  if (!logLevels.includes(value)) throw new ConfigError("TALKHUB_LOG_LEVEL", `expected one of ${logLevels.join(", ")}, got "${value}"`);
  return value;
}

function operator(env: Env): OperatorConfig | null {
  if (optional(env, "TALKHUB_OPERATOR_PORT")?.toLowerCase() === "off") return null;
  return {
    host: optional(env, "TALKHUB_OPERATOR_HOST") ?? defaultOperatorConfig.host,
    port: integer(env, "TALKHUB_OPERATOR_PORT", defaultOperatorConfig.port, 0, 65535),
  };
}

/** Both files or neither: a certificate without its key (or the reverse) is a mistake, not plaintext. */
function tls(env: Env): TlsConfig | undefined {
  const certFile = optional(env, "TALKHUB_TLS_CERT");
  const keyFile = optional(env, "TALKHUB_TLS_KEY");
  if (certFile === undefined && keyFile === undefined) return undefined;
  if (certFile === undefined) throw new ConfigError("TALKHUB_TLS_CERT", "must be set with TALKHUB_TLS_KEY (set both for TLS, or neither)");
  if (keyFile === undefined) throw new ConfigError("TALKHUB_TLS_KEY", "must be set with TALKHUB_TLS_CERT (set both for TLS, or neither)");
  return { certFile, keyFile };
}

/**
 * Checks of variables together, made after each is read on its own (so that every bad one is
 * reported first). Node refuses an HTTP/1.1 headers timeout longer than the whole request's.
 */
function checkedTogether(config: Config): Config {
  const http = config.http ?? defaultHttpConfig;
  if (http.headersTimeoutMs > http.requestTimeoutMs) {
    throw new ConfigError("TALKHUB_HEADERS_TIMEOUT_MS", `must not exceed TALKHUB_REQUEST_TIMEOUT_MS (${http.requestTimeoutMs})`);
  }
  return config;
}

/** NATS_URL: servers, comma-separated, each a URL or host:port (as the client takes them). */
function natsServers(env: Env): string | undefined {
  const raw = optional(env, "NATS_URL");
  if (raw === undefined) return undefined;
  for (const server of raw.split(",").map((s) => s.trim())) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(server.includes("://") ? server : `nats://${server}`);
    } catch {
      parsed = undefined;
    }
    if (parsed === undefined || parsed.hostname === "" || !["nats:", "tls:"].includes(parsed.protocol)) {
      throw new ConfigError(
        "NATS_URL",
        `"${server}" is not a NATS server: expected nats://host:port (or tls://, or host:port), comma-separated`,
      );
    }
  }
  return raw;
}

/**
 * Reads the configuration from an environment (process.env by default). Throws InvalidConfig
 * naming every variable that cannot be used, not only the first: each bad one is set aside and
 * the rest read again.
 */
export function readConfig(env: Env = process.env): Config {
  const problems: ConfigError[] = [];
  const remaining: Record<string, string | undefined> = { ...env };
  for (;;) {
    let config: Config;
    try {
      config = readConfigOnce(remaining);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      // A problem of variables together may stay once its variable is set aside: report it once.
      if (remaining[error.variable] !== undefined || !problems.some((p) => p.message === error.message)) problems.push(error);
      if (remaining[error.variable] === undefined) return invalid(problems);
      delete remaining[error.variable];
      continue;
    }
    return problems.length === 0 ? config : invalid(problems);
  }
}

function invalid(problems: readonly ConfigError[]): never {
  const [first, ...rest] = problems;
  if (first === undefined) throw new Error("no configuration problem to report");
  throw new InvalidConfig([first, ...rest]);
}

function readConfigOnce(env: Env): Config {
  const dataDir = optional(env, "TALKHUB_DATA_DIR") ?? ".talkhub";
  const databaseUrl = url(env, "DATABASE_URL", ["postgres:", "postgresql:"]);
  const secret = optional(env, "TALKHUB_JWT_SECRET");
  if (secret !== undefined && Buffer.byteLength(secret) < 32) {
    throw new ConfigError("TALKHUB_JWT_SECRET", "must be at least 32 bytes");
  }
  return checkedTogether({
    host: optional(env, "TALKHUB_HOST") ?? "0.0.0.0",
    port: integer(env, "TALKHUB_PORT", 8080, 0, 65535),
    tls: tls(env),
    database:
      databaseUrl === undefined
        ? { kind: "pglite", dataDir }
        : {
            kind: "postgres",
            url: databaseUrl,
            poolSize: integer(env, "TALKHUB_DB_POOL_SIZE", 10, 1, 1000),
            startupTimeoutMs: integer(env, "TALKHUB_DB_STARTUP_TIMEOUT_MS", 30_000, 0, 3_600_000),
          },
    auth: {
      secret,
      jwksUrl: url(env, "TALKHUB_JWKS_URL", ["http:", "https:"]),
      issuer: optional(env, "TALKHUB_JWT_ISSUER"),
      audience: optional(env, "TALKHUB_JWT_AUDIENCE"),
      allowTokensWithoutExp: boolean(env, "TALKHUB_ALLOW_TOKENS_WITHOUT_EXP", false),
    },
    natsUrl: natsServers(env),
    dataDir,
    migrateAtStart: boolean(env, "TALKHUB_MIGRATE_AT_START", true),
    live: {
      natsPrefix: optional(env, "TALKHUB_NATS_PREFIX") ?? defaultLiveConfig.natsPrefix,
      natsStartupTimeoutMs: integer(env, "TALKHUB_NATS_STARTUP_TIMEOUT_MS", 30_000, 0, 3_600_000),
      heartbeatMs: integer(env, "TALKHUB_HEARTBEAT_MS", defaultLiveConfig.heartbeatMs, 100, 3_600_000),
      gapCheckMs: integer(env, "TALKHUB_GAP_CHECK_MS", defaultLiveConfig.gapCheckMs, 50, 600_000),
      ...(optional(env, "TALKHUB_MEMBERSHIP_CHECK_MS") === undefined
        ? {}
        : { membershipCheckMs: integer(env, "TALKHUB_MEMBERSHIP_CHECK_MS", 5_000, 50, 3_600_000) }),
      streamMaxQueued: integer(env, "TALKHUB_STREAM_MAX_QUEUED", defaultLiveConfig.streamMaxQueued, 10, 1_000_000),
      retentionDays: integer(env, "TALKHUB_EVENT_RETENTION_DAYS", defaultLiveConfig.retentionDays, 1, 36_500),
      callerRecheckMs: integer(env, "TALKHUB_CALLER_RECHECK_MS", defaultLiveConfig.callerRecheckMs, 100, 3_600_000),
    },
    http: {
      corsOrigins: (optional(env, "TALKHUB_CORS_ORIGINS") ?? "*")
        .split(",")
        .map((o) => o.trim())
        .filter((o) => o !== ""),
      maxRequestBytes: integer(env, "TALKHUB_MAX_REQUEST_BYTES", defaultHttpConfig.maxRequestBytes, 1024, 1024 * 1024 * 1024),
      maxStreamsPerConnection: integer(env, "TALKHUB_MAX_STREAMS_PER_CONNECTION", defaultHttpConfig.maxStreamsPerConnection, 1, 1_000_000),
      idleTimeoutMs: integer(env, "TALKHUB_IDLE_TIMEOUT_MS", defaultHttpConfig.idleTimeoutMs, 1_000, 3_600_000),
      headersTimeoutMs: integer(env, "TALKHUB_HEADERS_TIMEOUT_MS", defaultHttpConfig.headersTimeoutMs, 100, 3_600_000),
      requestTimeoutMs: integer(env, "TALKHUB_REQUEST_TIMEOUT_MS", defaultHttpConfig.requestTimeoutMs, 100, 3_600_000),
      unauthenticatedBytesPerConnection: integer(
        env,
        "TALKHUB_UNAUTHENTICATED_BYTES_PER_CONNECTION",
        defaultHttpConfig.unauthenticatedBytesPerConnection,
        64 * 1024,
        1024 * 1024 * 1024,
      ),
      maxSessionMemoryMb: integer(env, "TALKHUB_H2_SESSION_MEMORY_MB", defaultHttpConfig.maxSessionMemoryMb, 1, 1_000_000),
      logLevel: logLevel(optional(env, "TALKHUB_LOG_LEVEL") ?? "info"),
    },
    operator: operator(env),
    abuse: {
      writes: {
        sends: writeRate(env, "TALKHUB_SEND", { rate: 20, burst: 50 }),
        // Kept per minute, as it always was.
        talkCreates: writeRate(env, "TALKHUB_TALK_CREATE", { rate: 60, burst: 20 }, true),
        participants: writeRate(env, "TALKHUB_PARTICIPANT", { rate: 5, burst: 20 }),
        reactions: writeRate(env, "TALKHUB_REACTION", { rate: 10, burst: 30 }),
        edits: writeRate(env, "TALKHUB_EDIT", { rate: 5, burst: 20 }),
        deletes: writeRate(env, "TALKHUB_DELETE", { rate: 5, burst: 20 }),
        talkStatus: writeRate(env, "TALKHUB_TALK_STATUS", { rate: 2, burst: 10 }),
        agentAdmin: writeRate(env, "TALKHUB_AGENT_ADMIN", { rate: 20, burst: 100 }),
      },
      streamsPerAgent: integer(env, "TALKHUB_STREAMS_PER_AGENT", 100, 0, 1_000_000),
    },
  });
}
