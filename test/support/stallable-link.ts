/**
 * A TCP link between a process and a server on 127.0.0.1 that a test can stall: while stalled,
 * what the process writes is no longer read (it stays in the process's buffers, and is lost if
 * the process dies); cut() then drops every connection open through it without forwarding the
 * rest. Connections opened later are forwarded normally.
 */
import { createServer, connect as tcpConnect, type Server, type Socket } from "node:net";

export interface StallableLink {
  /** The port (on 127.0.0.1) the process connects to instead of the server. */
  readonly port: number;
  /** Stops reading from the process on every connection open now. */
  stall(): void;
  /** Destroys every connection open now, discarding what was not forwarded. */
  cut(): void;
  close(): Promise<void>;
}

export async function stallableLink(targetPort: number): Promise<StallableLink> {
  const open = new Set<{ inbound: Socket; outbound: Socket }>();
  const server: Server = createServer((inbound) => {
    const outbound = tcpConnect({ host: "127.0.0.1", port: targetPort });
    const pair = { inbound, outbound };
    open.add(pair);
    const end = () => {
      open.delete(pair);
      inbound.destroy();
      outbound.destroy();
    };
    inbound.on("data", (chunk) => outbound.write(chunk));
    outbound.on("data", (chunk) => inbound.write(chunk));
    for (const socket of [inbound, outbound]) {
      socket.on("error", end);
      socket.on("close", end);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("the link has no port");
  return {
    port: address.port,
    stall: () => {
      for (const { inbound } of open) inbound.pause();
    },
    cut: () => {
      for (const { inbound, outbound } of [...open]) {
        inbound.destroy();
        outbound.destroy();
      }
      open.clear();
    },
    close: async () => {
      for (const { inbound, outbound } of open) {
        inbound.destroy();
        outbound.destroy();
      }
      open.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
