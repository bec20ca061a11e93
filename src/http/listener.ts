import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import type { Duplex } from "node:stream";
import tls from "node:tls";

export type RequestHandler = (
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
) => void;

/** Takes an HTTP/1.1 upgrade request, or returns false to have it refused. */
export type UpgradeHandler = (req: http.IncomingMessage, socket: Duplex, head: Buffer) => boolean;

export interface Listener {
  readonly port: number;
  /** Stops accepting connections, then closes the open ones once their requests end. */
  close(): Promise<void>;
}

/** Every HTTP/2 connection starts with this preface; no HTTP/1.x request starts with "PRI". */
const h2Preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

function startsLikeH2(chunk: Buffer): boolean {
  const n = Math.min(chunk.length, h2Preface.length);
  return chunk.subarray(0, n).equals(h2Preface.subarray(0, n));
}

/** Headers of an upgrade offer, dropped when the offer is declined. */
const upgradeOffer = new Set(["upgrade", "http2-settings"]);

/**
 * The request head again, as bytes, without its upgrade offer: no Upgrade or HTTP2-Settings
 * header, and no "upgrade" or "http2-settings" token in Connection.
 */
function withoutUpgrade(req: http.IncomingMessage): Buffer {
  const lines = [`${req.method ?? "GET"} ${req.url ?? "/"} HTTP/${req.httpVersion}`];
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] ?? "";
    let value = raw[i + 1] ?? "";
    if (upgradeOffer.has(name.toLowerCase())) continue;
    if (name.toLowerCase() === "connection") {
      value = value
        .split(",")
        .map((token) => token.trim())
        .filter((token) => token !== "" && !upgradeOffer.has(token.toLowerCase()))
        .join(", ");
      if (value === "") continue;
    }
    lines.push(`${name}: ${value}`);
  }
  return Buffer.from(`${lines.join("\r\n")}\r\n\r\n`, "latin1");
}

/**
 * Per HTTP/2 connection: the request body bytes taken in for requests whose caller has not been
 * authenticated from their headers, and the most it may hold.
 */
interface UnauthenticatedBodies {
  readonly max: number;
  held: number;
  /** Those requests still receiving their bodies, with when they began. */
  readonly pending: Map<CappedRequest, number>;
}

const unauthenticatedBodies = new WeakMap<http2.Http2Session, UnauthenticatedBodies>();

/**
 * An HTTP/2 request whose body bytes count against its connection's cap until a handler
 * authenticates its caller from its headers; the stream that would pass the cap is reset
 * (ENHANCE_YOUR_CALM), so that no token is needed to park large partial bodies. Until then its
 * body must also arrive within the request timeout, as on HTTP/1.1 (see listen).
 */
class CappedRequest extends http2.Http2ServerRequest {
  #held = 0;
  #trusted = false;

  constructor(...args: ConstructorParameters<typeof http2.Http2ServerRequest>) {
    super(...args);
    this.stream.once("close", () => this.#release());
    if (!this.stream.endAfterHeaders) this.#bodies()?.pending.set(this, Date.now());
  }

  override push(chunk: unknown, encoding?: BufferEncoding): boolean {
    if (chunk === null) this.#bodies()?.pending.delete(this);
    const bodies = this.#trusted || !(chunk instanceof Uint8Array) ? undefined : this.#bodies();
    if (bodies !== undefined && chunk instanceof Uint8Array) {
      if (bodies.held + chunk.length > bodies.max) {
        this.#release();
        if (!this.stream.destroyed) this.stream.close(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
        return false;
      }
      bodies.held += chunk.length;
      this.#held += chunk.length;
    }
    return super.push(chunk, encoding);
  }

  trust(): void {
    this.#release();
    this.#trusted = true;
  }

  /** The body did not arrive in time. */
  expire(): void {
    this.#release();
    if (!this.stream.destroyed) this.stream.close(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
  }

  #bodies(): UnauthenticatedBodies | undefined {
    const session = this.stream.session;
    return session === undefined ? undefined : unauthenticatedBodies.get(session);
  }

  #release(): void {
    const bodies = this.#bodies();
    if (bodies !== undefined) {
      bodies.held -= this.#held;
      bodies.pending.delete(this);
    }
    this.#held = 0;
  }
}

/**
 * Marks a request whose caller was authenticated from its headers: its body no longer counts
 * against its HTTP/2 connection's cap on unauthenticated bytes.
 */
export function authenticated(req: http.IncomingMessage | http2.Http2ServerRequest): void {
  if (req instanceof CappedRequest) req.trust();
}

/**
 * Closes (GOAWAY) an HTTP/2 session that opens no stream within `firstMs`, or has had no open
 * stream for `idleMs`. Open streams keep it, however quiet: they have their own heartbeats.
 */
function closeWhenIdle(session: http2.ServerHttp2Session, firstMs: number, idleMs: number): void {
  let open = 0;
  const close = () => {
    if (!session.closed && !session.destroyed) session.close();
  };
  let timer = setTimeout(close, firstMs).unref();
  session.on("stream", (stream: http2.ServerHttp2Stream) => {
    open += 1;
    clearTimeout(timer);
    stream.once("close", () => {
      open -= 1;
      if (open === 0) timer = setTimeout(close, idleMs).unref();
    });
  });
  session.once("close", () => clearTimeout(timer));
}

/** A TLS record starts with its content type; a client's first is a handshake (22). */
const tlsHandshakeRecord = 0x16;

/** The answer to plaintext on the TLS port: HTTP/1.1 clients show it; h2c clients fail on it. */
const plaintextRefused = (() => {
  const body = "This port speaks TLS only: use https:// (or wss://).\n";
  return Buffer.from(
    `HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    "latin1",
  );
})();

/** The public port's certificate chain and key (PEM); see src/tls-credentials.ts. */
export interface ListenerTls {
  readonly cert: Buffer;
  readonly key: Buffer;
}

/**
 * One TCP port for everything: each connection's first bytes tell HTTP/2 with prior knowledge
 * (gRPC, Connect and gRPC-Web over h2c) from HTTP/1.1 (Connect, gRPC-Web, REST, WebSocket),
 * and the connection goes to the matching Node server. With `tls`, the port speaks TLS only:
 * ALPN offers h2 and http/1.1, and the decrypted connection is told apart the same way.
 */
export interface ListenOptions {
  readonly host: string;
  readonly port: number;
  /** TLS on the port; plaintext (HTTP/1.1 and h2c) when undefined. */
  readonly tls?: ListenerTls | undefined;
  readonly maxStreamsPerConnection: number;
  /** HTTP/1.1 keep-alive between requests, and HTTP/2 with no open stream. */
  readonly idleTimeoutMs: number;
  /** An HTTP/1.1 request's headers; a connection's first bytes; an HTTP/2 connection's first stream. */
  readonly headersTimeoutMs: number;
  /**
   * A whole HTTP/1.1 request, headers and body (not its response); also the body of an HTTP/2
   * request not authenticated from its headers.
   */
  readonly requestTimeoutMs: number;
  /** See CappedRequest. */
  readonly unauthenticatedBytesPerConnection: number;
  /** nghttp2's memory per HTTP/2 connection, in MiB. */
  readonly maxSessionMemoryMb: number;
  readonly onUpgrade?: UpgradeHandler;
}

export async function listen(handler: RequestHandler, options: ListenOptions): Promise<Listener> {
  const { host, port, onUpgrade } = options;
  const requestTimeout = options.requestTimeoutMs;
  const headersTimeout = Math.min(options.headersTimeoutMs, requestTimeout);
  // How often the request timeouts are checked; Node's default (30 s) would stretch short ones.
  const checkEveryMs = Math.max(50, Math.min(1_000, Math.floor(headersTimeout / 4)));
  const h1 = http.createServer(
    {
      headersTimeout,
      requestTimeout,
      connectionsCheckingInterval: checkEveryMs,
    },
    handler,
  );
  h1.on("upgrade", (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    if (onUpgrade?.(req, socket, head) === true) return;
    // An upgrade nobody takes (h2c, which the JDK's HttpClient and `curl --http2` offer on
    // http:// URLs) is ignored, as RFC 9110 allows: the request is read again without its
    // offer and answered as plain HTTP/1.1 on the same keep-alive connection.
    socket.pause();
    socket.unshift(Buffer.concat([withoutUpgrade(req), head]));
    h1.emit("connection", socket);
    process.nextTick(() => socket.resume());
  });
  // Idle keep-alive connections are closed after a while; streams are not limited by this.
  h1.keepAliveTimeout = options.idleTimeoutMs;
  // Node checks the headers and request timeouts from "listening"; this server never listens
  // itself (connections come from the TCP server below), so it is told.
  h1.emit("listening");
  const h2 = http2.createServer(
    {
      maxSessionMemory: options.maxSessionMemoryMb,
      settings: { maxConcurrentStreams: options.maxStreamsPerConnection },
      Http2ServerRequest: CappedRequest,
    },
    handler,
  );
  const sockets = new Set<net.Socket>();
  const sessions = new Set<http2.ServerHttp2Session>();
  h2.on("session", (session: http2.ServerHttp2Session) => {
    sessions.add(session);
    unauthenticatedBodies.set(session, { max: options.unauthenticatedBytesPerConnection, held: 0, pending: new Map() });
    closeWhenIdle(session, headersTimeout, options.idleTimeoutMs);
    session.on("close", () => sessions.delete(session));
  });

  // HTTP/2 requests not authenticated from their headers get the HTTP/1.1 request timeout for
  // their bodies; an open stream would otherwise keep its connection forever.
  const expireSlowBodies = setInterval(() => {
    const now = Date.now();
    for (const session of sessions) {
      for (const [request, since] of unauthenticatedBodies.get(session)?.pending ?? []) {
        if (now - since > requestTimeout) request.expire();
      }
    }
  }, checkEveryMs).unref();

  /**
   * Hands a connection to the HTTP/1.1 or the HTTP/2 server by its first bytes (after TLS, the
   * decrypted ones: a client that negotiated no ALPN may still speak h2 with prior knowledge).
   */
  const route = (socket: net.Socket): void => {
    // A connection that says nothing (or not enough to tell its protocol) is not kept.
    const silent = setTimeout(() => socket.destroy(), headersTimeout).unref();
    socket.once("close", () => clearTimeout(silent));
    let head: Buffer = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
      const isH2 = startsLikeH2(head);
      // The whole preface decides HTTP/2: a lone "P" may as well start "POST".
      if (isH2 && head.length < h2Preface.length) return;
      clearTimeout(silent);
      socket.off("data", onData);
      socket.pause();
      socket.unshift(head);
      (isH2 ? h2 : h1).emit("connection", socket);
      process.nextTick(() => socket.resume());
    };
    socket.on("data", onData);
  };

  const secure =
    options.tls === undefined
      ? undefined
      : tls.createServer(
          {
            cert: options.tls.cert,
            key: options.tls.key,
            ALPNProtocols: ["h2", "http/1.1"],
            // A handshake gets the time a plaintext connection has for its first bytes.
            handshakeTimeout: headersTimeout,
          },
          (socket) => {
            socket.on("error", () => socket.destroy());
            route(socket);
          },
        );
  // A failed handshake (a bad certificate for the client, plaintext, a scan) ends its connection only.
  secure?.on("tlsClientError", (_error, socket) => socket.destroy());

  /** On the TLS port: a connection that does not start with a TLS handshake is told so and closed. */
  const encrypted = (socket: net.Socket, server: tls.Server): void => {
    const silent = setTimeout(() => socket.destroy(), headersTimeout).unref();
    socket.once("close", () => clearTimeout(silent));
    socket.once("data", (chunk: Buffer) => {
      clearTimeout(silent);
      if (chunk[0] !== tlsHandshakeRecord) {
        socket.end(plaintextRefused);
        // Whatever else it sends is not read; the socket goes once the answer is out.
        socket.resume();
        setTimeout(() => socket.destroy(), 1_000).unref();
        return;
      }
      socket.pause();
      socket.unshift(chunk);
      // The TLS socket takes over the TCP one, and the bytes it had already read.
      server.emit("connection", socket);
    });
  };

  // Nagle off: small HTTP/2 frames must not wait for the peer's delayed ACK.
  const tcp = net.createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    if (secure === undefined) route(socket);
    else encrypted(socket, secure);
  });
  tcp.maxConnections = 100_000;

  await new Promise<void>((resolve, reject) => {
    tcp.once("error", reject);
    tcp.listen(port, host, () => {
      tcp.off("error", reject);
      resolve();
    });
  });
  const address = tcp.address();
  if (address === null || typeof address === "string") throw new Error("the listener has no TCP address");

  return {
    port: address.port,
    close: () =>
      new Promise<void>((resolve) => {
        // HTTP/2 sessions finish their open streams; HTTP/1.1 connections close once idle;
        // whatever is still open after the grace period is cut.
        const idle = setInterval(() => h1.closeIdleConnections(), 100);
        const cut = setTimeout(() => {
          for (const socket of sockets) socket.destroy();
        }, 5_000);
        tcp.close(() => {
          clearInterval(idle);
          clearTimeout(cut);
          // Stops the HTTP/1.1 timeout checks (the server itself never listened).
          h1.close();
          clearInterval(expireSlowBodies);
          resolve();
        });
        for (const session of sessions) session.close();
        h1.closeIdleConnections();
      }),
  };
}
