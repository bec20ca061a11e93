import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import type { Duplex } from "node:stream";

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

/**
 * One TCP port for everything: each connection's first bytes tell HTTP/2 with prior knowledge
 * (gRPC, Connect and gRPC-Web over h2c) from HTTP/1.1 (Connect, gRPC-Web, REST, WebSocket),
 * and the connection goes to the matching Node server.
 */
export interface ListenOptions {
  readonly host: string;
  readonly port: number;
  readonly maxStreamsPerConnection: number;
  readonly idleTimeoutMs: number;
  readonly onUpgrade?: UpgradeHandler;
}

export async function listen(handler: RequestHandler, options: ListenOptions): Promise<Listener> {
  const { host, port, onUpgrade } = options;
  const h1 = http.createServer(handler);
  h1.on("upgrade", (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    if (onUpgrade === undefined || !onUpgrade(req, socket, head)) socket.destroy();
  });
  // Idle keep-alive connections are closed after a while; streams are not limited by this.
  h1.keepAliveTimeout = options.idleTimeoutMs;
  h1.headersTimeout = Math.min(options.idleTimeoutMs + 1_000, 60_000);
  h1.requestTimeout = 0;
  const h2 = http2.createServer({ maxSessionMemory: 64, settings: { maxConcurrentStreams: options.maxStreamsPerConnection } }, handler);
  const sockets = new Set<net.Socket>();
  const sessions = new Set<http2.ServerHttp2Session>();
  h2.on("session", (session) => {
    sessions.add(session);
    session.on("close", () => sessions.delete(session));
  });

  // Nagle off: small HTTP/2 frames must not wait for the peer's delayed ACK.
  const tcp = net.createServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    socket.once("data", (chunk: Buffer) => {
      socket.pause();
      socket.unshift(chunk);
      (startsLikeH2(chunk) ? h2 : h1).emit("connection", socket);
      process.nextTick(() => socket.resume());
    });
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
          resolve();
        });
        for (const session of sessions) session.close();
        h1.closeIdleConnections();
      }),
  };
}
