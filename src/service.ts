/**
 * The service's wiring: storage, bus, domain, RPC and the listener, started and stopped as one.
 */
import { setMaxListeners } from "node:events";
import { fileURLToPath } from "node:url";
import { loadOrCreateSecret } from "./auth/secret.js";
import { createVerifier } from "./auth/verifier.js";
import { lockDataDir } from "./data-dir-lock.js";
import { errorLine } from "./error-line.js";
import { readTlsCredentials } from "./tls-credentials.js";
import { ConfigError, defaultHttpConfig, defaultLiveConfig, noAbuseLimits, type Config } from "./config.js";
import { StreamQuota } from "./domain/stream-quota.js";
import { startCallerCheck } from "./domain/caller-check.js";
import { WriteLimits } from "./domain/write/write-limits.js";
import { Callers } from "./domain/agents.js";
import type { DomainDeps } from "./domain/deps.js";
import { Unauthenticated, Unavailable } from "./domain/model/errors.js";
import { sendAlone } from "./domain/messages.js";
import type { WatchDeps } from "./live/watch.js";
import type { EventBus } from "./bus/bus.js";
import type { EventLog } from "./events/event-log.js";
import { limitedLog } from "./events/limited-log.js";
import { LocalBus } from "./bus/local-bus.js";
import { NatsBus } from "./bus/nats-bus.js";
import { startRetention } from "./events/retention.js";
import { watchedViews } from "./live/watched-views.js";
import { feedReads } from "./live/feed-reads.js";
import { TalkFeeds } from "./live/talk-feeds.js";
import { createHandler } from "./http/handler.js";
import { listen, type Listener } from "./http/listener.js";
import { useFastProtobufUtf8 } from "./http/protobuf-utf8.js";
import { createLocalCalls } from "./http/local-calls.js";
import { createUpgradeHandler } from "./http/websocket.js";
import { headerAuthentication } from "./rpc/header-authentication.js";
import { authInterceptor, callerAuthenticator, errorInterceptor } from "./rpc/interceptors.js";
import { apiServices } from "./rpc/index.js";
import { observeInterceptor } from "./rpc/observe-interceptor.js";
import { AgentService } from "../gen/talk/v1/agent_service_pb.js";
import { Health } from "../gen/grpc/health/v1/health_pb.js";
import { ServerReflection as ReflectionV1 } from "../gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ReflectionV1alpha } from "../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { MessageService } from "../gen/talk/v1/message_service_pb.js";
import { TalkService } from "../gen/talk/v1/talk_service_pb.js";
import { createHealthEndpoints, createOperatorEndpoints, listenOperator } from "./http/operator-endpoints.js";
import { loadDescriptors } from "./operator/descriptors.js";
import { healthService } from "./operator/health.js";
import { createLogger } from "./operator/logger.js";
import { Metrics } from "./operator/metrics.js";
import { reflectionServices } from "./operator/reflection.js";
import type { ReadinessChecks } from "./operator/readiness.js";
import type { EventSink } from "./events/event-sink.js";
import { openDatabase, type Database } from "./store/database.js";
import { guarded } from "./store/errors.js";
import { pruneEvents, readEvents, readHeads } from "./store/event-store.js";
import { pruneFullBuckets, takeTokens } from "./store/rate-bucket-store.js";
import { SendBatcher } from "./sends/send-batcher.js";
import { commitSends, readSendTargets } from "./sends/send-store.js";

export interface Service {
  readonly port: number;
  /** http://127.0.0.1:<port>, or https:// with TLS */
  readonly url: string;
  /** http://127.0.0.1:<port> of the operator listener (/metrics, /healthz, /readyz); undefined when it is off. */
  readonly operatorUrl: string | undefined;
  /** The HS256 secret in use (generated on the embedded default), if any. */
  readonly secret: string | undefined;
  readonly database: Database;
  readonly deps: DomainDeps;
  /** The live-events machinery: open streams (quota) and talk feeds, for tests and metrics. */
  readonly watch: WatchDeps;
  /** Ends every stream with UNAVAILABLE, then stops listening and closes the bus and database. */
  close(): Promise<void>;
}

export interface ServiceOptions {
  /** Where unexpected errors are reported; stderr by default. */
  readonly onError?: (error: unknown, where: string) => void;
  /** Told every statement sent to the database (see OpenOptions); tests count round trips with it. */
  readonly onStatement?: (sql: string) => void;
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

/** The token library's check behind a refusal (e.g. ERR_JWS_SIGNATURE_VERIFICATION_FAILED), for the debug log. */
function refusalDetail(domainError: unknown): { check?: string; detail?: string } {
  const cause = domainError instanceof Error ? domainError.cause : undefined;
  if (!(cause instanceof Error)) return {};
  return { ...("code" in cause ? { check: String(cause.code) } : {}), detail: cause.message };
}

export async function startService(config: Config, options: ServiceOptions = {}): Promise<Service> {
  const live = config.live ?? defaultLiveConfig;
  const httpConfig = config.http ?? defaultHttpConfig;
  const abuse = config.abuse ?? noAbuseLimits;
  const logger = createLogger(httpConfig.logLevel);
  // Unreadable certificate files stop the start before anything is opened.
  const tls = config.tls === undefined ? undefined : readTlsCredentials(config.tls);
  const onError = options.onError ?? ((error: unknown, where: string) => logger.error({ err: error, where }, "unexpected error"));
  // One process per data dir: a second one on the same database files would lose writes.
  const dataDirLock =
    config.database.kind === "pglite" && config.database.dataDir !== null ? await lockDataDir(config.database.dataDir) : undefined;
  const closers: (() => Promise<void> | void)[] = dataDirLock === undefined ? [] : [() => dataDirLock.release()];
  try {
    const secret = resolveSecret(config);
    const verify = createVerifier({ ...config.auth, secret });
    // NATS first: it is quick to reach or not, where the embedded database takes seconds to open.
    const bus: EventBus =
      config.natsUrl === undefined
        ? new LocalBus()
        : await NatsBus.connect({
            servers: config.natsUrl,
            prefix: live.natsPrefix,
            onError: (e) => onError(e, "nats"),
            ...(live.natsStartupTimeoutMs === undefined ? {} : { startupTimeoutMs: live.natsStartupTimeoutMs }),
            onConnectFailure: ({ servers, attempt, error, retryInMs }) =>
              logger.warn({ servers, attempt, error: errorLine(error), retry_in_ms: retryInMs }, "NATS not reachable yet; retrying"),
            // Live events wait for the return; watchers fill what they missed from the event log.
            onConnectionChange: ({ kind, server }) =>
              kind === "disconnected"
                ? logger.warn({ server }, "NATS disconnected; reconnecting")
                : logger.info({ server }, "NATS reconnected"),
          });
    closers.unshift(() => bus.close());
    const database = await openDatabase(config.database, {
      migrations: config.migrateAtStart === false ? "require" : "apply",
      ...(options.onStatement === undefined ? {} : { onStatement: options.onStatement }),
      onConnectFailure: ({ server, attempt, error, retryInMs }) =>
        logger.warn({ server, attempt, error: errorLine(error), retry_in_ms: retryInMs }, "Postgres not reachable yet; retrying"),
    });
    closers.unshift(() => database.close());
    const db = database.db;
    // Replays and gap fills use at most half the pool: a storm of watchers resuming at once
    // waits in the process and leaves writers their connections.
    const log: EventLog = limitedLog(
      {
        read: (talkId, afterSeq, limit) => guarded(() => readEvents(db, talkId, afterSeq, limit)),
        heads: (talkIds) => guarded(() => readHeads(db, talkIds)),
      },
      config.database.kind === "postgres" ? Math.max(1, Math.floor(config.database.poolSize / 2)) : 1,
    );
    const feeds = new TalkFeeds(bus, log, { gapCheckMs: live.gapCheckMs, onError: (e) => onError(e, "talk feed") });
    closers.unshift(() => feeds.close());
    closers.unshift(
      startRetention({
        retentionDays: live.retentionDays,
        prune: (before, limit) => guarded(() => pruneEvents(db, before, limit)),
        onError: (e) => onError(e, "event retention"),
      }),
    );
    const metrics = new Metrics(() => database.poolStats());
    const shutdown = new AbortController();
    // Every open stream listens for the shutdown.
    setMaxListeners(0, shutdown.signal);
    // Every committed event is counted on its way to the bus.
    const events: EventSink = {
      publish: (committed) => {
        metrics.published.inc(committed.length);
        bus.publish(committed);
      },
    };
    const writeLimits = new WriteLimits(abuse.writes, (requests) => guarded(() => takeTokens(db, requests)));
    if (writeLimits.enabled) {
      // A full bucket says nothing: drop those now and then, so the table holds busy agents only.
      const pruning = setInterval(
        () => void guarded(() => pruneFullBuckets(db, 10_000)).catch((e: unknown) => onError(e, "rate buckets")),
        60_000,
      );
      pruning.unref();
      closers.unshift(() => clearInterval(pruning));
    }
    const now = () => new Date();
    const sends = new SendBatcher(
      {
        store: {
          readSendTargets: (talkIds, agentIds, parentIds) => guarded(() => readSendTargets(db, talkIds, agentIds, parentIds)),
          commitSends: (moves, messages, committed) => guarded(() => commitSends(db, moves, messages, committed)),
          // Called only once a send is submitted, when deps exist.
          sendAlone: (request) => sendAlone(deps, request),
        },
        events,
        now,
      },
      {
        maxBatch: 256,
        // The embedded database has one connection; on Postgres, half the pool may commit sends.
        maxInFlight: config.database.kind === "postgres" ? Math.max(1, Math.floor(config.database.poolSize / 2)) : 1,
        parallelAfter: 32,
        onCommit: (size) => metrics.sendBatch.observe(size),
      },
    );
    const deps: DomainDeps = { db, events, now, writeLimits, sends };
    const watch: WatchDeps = {
      bus,
      feeds,
      views: watchedViews(db),
      feedReads: feedReads(db),
      log,
      shutdown: shutdown.signal,
      maxQueued: live.streamMaxQueued,
      heartbeatMs: live.heartbeatMs,
      membershipCheckMs: live.membershipCheckMs ?? Math.max(live.gapCheckMs, 5_000),
      retentionDays: live.retentionDays,
      onDelivered: (event) => metrics.eventDelivered(event.tmCreate),
      streams: new StreamQuota(abuse.streamsPerAgent),
    };
    metrics.observeStreams(() => ({ slots: watch.streams.total, feeds: feeds.size, listeners: feeds.listeners }));
    // Streams of deleted agents end within this interval, in every process.
    closers.unshift(startCallerCheck(deps, watch.streams, watch.membershipCheckMs, (e) => onError(e, "caller check")));
    const callers = new Callers(deps, live.callerRecheckMs);
    const talkServices = [TalkService, MessageService, AgentService];
    const readiness: ReadinessChecks = { database: () => database.ping(), busConnected: () => bus.connected };
    const services = [
      ...apiServices({ deps, callers, watch }),
      healthService(
        readiness,
        talkServices.map((s) => s.typeName),
      ),
      ...reflectionServices(
        loadDescriptors(),
        [...talkServices, Health].map((s) => s.typeName),
      ),
    ];
    const openServices = new Set([Health.typeName, ReflectionV1.typeName, ReflectionV1alpha.typeName]);
    // A call refused from its headers never reaches the interceptors: it is counted and logged
    // as they would have.
    const authenticate = headerAuthentication(verify, openServices, (method, header, refusal) => {
      const name = `${method.parent.typeName}/${method.name}`;
      const requestId = header.get("x-request-id")?.slice(0, 128);
      metrics.requests.inc({ method: name, code: "unauthenticated" });
      // Why, for whoever debugs a client: which check failed, never the token.
      logger.debug({ method: name, reason: refusal.rawMessage, ...refusalDetail(refusal.cause), request_id: requestId }, "token refused");
      logger.info({ method: name, code: "unauthenticated", duration_ms: 0, request_id: requestId }, "rpc");
    });
    // Every protobuf answer's ids and short texts are copied as ASCII, not through TextEncoder.
    useFastProtobufUtf8();
    // One chain for every call, whichever edge it comes in by (gRPC, Connect, REST, WebSocket).
    const interceptors = [
      observeInterceptor(metrics, logger),
      errorInterceptor((e, procedure) => onError(e, procedure)),
      authInterceptor(verify, callers, openServices),
    ];
    const handler = createHandler({
      restServices: talkServices,
      services,
      interceptors,
      readMaxBytes: httpConfig.maxRequestBytes,
      authenticate,
      corsOrigins: httpConfig.corsOrigins,
      operator: createHealthEndpoints(readiness),
      webRoot: fileURLToPath(new URL("../web/dist", import.meta.url)),
      openApiFile: new URL("../gen/openapi.json", import.meta.url),
    });
    const onUpgrade = createUpgradeHandler({
      calls: createLocalCalls(services, interceptors),
      authenticate: callerAuthenticator(verify, callers),
      shutdown: shutdown.signal,
      heartbeatMs: live.heartbeatMs,
      maxBufferedBytes: 1 << 20,
      maxFrameBytes: 64 * 1024,
      onRefused: (error) => {
        if (!(error instanceof Unauthenticated)) return;
        logger.debug({ method: "websocket upgrade", reason: error.message, ...refusalDetail(error) }, "token refused");
      },
    });
    const listener: Listener = await listen(handler, {
      host: config.host,
      port: config.port,
      tls,
      maxStreamsPerConnection: httpConfig.maxStreamsPerConnection,
      idleTimeoutMs: httpConfig.idleTimeoutMs,
      headersTimeoutMs: httpConfig.headersTimeoutMs,
      requestTimeoutMs: httpConfig.requestTimeoutMs,
      unauthenticatedBytesPerConnection: httpConfig.unauthenticatedBytesPerConnection,
      maxSessionMemoryMb: httpConfig.maxSessionMemoryMb,
      onUpgrade,
    });
    closers.unshift(() => listener.close());
    const operatorConfig = config.operator === undefined ? { host: "127.0.0.1", port: 0 } : config.operator;
    const operator =
      operatorConfig === null ? undefined : await listenOperator(createOperatorEndpoints(readiness, metrics), operatorConfig);
    if (operator !== undefined) closers.unshift(() => operator.close());
    return {
      port: listener.port,
      url: `${tls === undefined ? "http" : "https"}://127.0.0.1:${listener.port}`,
      operatorUrl: operator === undefined ? undefined : `http://127.0.0.1:${operator.port}`,
      secret,
      database,
      deps,
      watch,
      close: async () => {
        shutdown.abort(new Unavailable("the server is shutting down; reconnect and resume"));
        for (const close of closers) await close();
      },
    };
  } catch (error) {
    for (const close of closers) await close();
    throw error;
  }
}
