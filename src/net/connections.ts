import type { Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';

/**
 * Connection limits every accel server applies, so idle or half-open connections cannot starve it (1,100 idle
 * connections once silenced the mirror for 75 s under a 1,024 descriptor limit):
 * - a connection must send its request headers within `headersTimeoutMs`, and an idle keep-alive connection
 *   is closed after `keepAliveMs`; Node checks both every second rather than every 30;
 * - at most `max` connections are open: a new one beyond that closes the longest-idle connection (no request
 *   in flight), or is itself refused when every connection is busy.
 * `close()` ends every connection, in flight or not.
 */
export interface ConnectionLimits {
  max: number;
  headersTimeoutMs: number;
  keepAliveMs: number;
}

export const DEFAULT_CONNECTION_LIMITS: ConnectionLimits = { max: 512, headersTimeoutMs: 15_000, keepAliveMs: 5_000 };

/** Options for http(s).createServer that go with guardConnections. */
export function serverTimeouts(limits: ConnectionLimits) {
  return {
    headersTimeout: limits.headersTimeoutMs,
    keepAliveTimeout: limits.keepAliveMs,
    connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs),
  };
}

export function guardConnections(server: HttpServer | HttpsServer, limits: ConnectionLimits) {
  // Keyed by the peer's address and port: for TLS the raw socket ('connection') and the TLS socket a request
  // arrives on are different objects for one connection.
  const sockets = new Map<string, { socket: Socket; busy: number }>();
  /** Connections without a request in flight, longest-idle first (a Set keeps insertion order). */
  const idle = new Set<string>();
  const keyOf = (s: Socket) => `${s.remoteAddress}|${s.remotePort}`;
  server.on('connection', (socket: Socket) => {
    if (sockets.size >= limits.max) {
      const oldest = idle.values().next().value;
      if (oldest === undefined) {
        socket.destroy();
        return;
      }
      sockets.get(oldest)?.socket.destroy();
      idle.delete(oldest);
    }
    const key = keyOf(socket);
    const entry = { socket, busy: 0 };
    sockets.set(key, entry);
    idle.add(key);
    // Node's own headersTimeout does not cover a connection that never sends a byte: our inactivity timer
    // does (headers first, then the keep-alive time once a request was answered); a request in flight is
    // never cut by it (long polls, slow downloads).
    socket.setTimeout(limits.headersTimeoutMs);
    socket.on('timeout', () => {
      if (entry.busy === 0) socket.destroy();
    });
    socket.on('close', () => {
      sockets.delete(key);
      idle.delete(key);
    });
  });
  server.on('request', (req, res) => {
    const key = keyOf(req.socket as Socket);
    const entry = sockets.get(key);
    if (!entry) return;
    entry.busy++;
    idle.delete(key);
    res.on('close', () => {
      entry.busy--;
      if (entry.busy === 0 && sockets.get(key) === entry) {
        idle.add(key);
        entry.socket.setTimeout(limits.keepAliveMs);
      }
    });
  });
  return {
    get open() {
      return sockets.size;
    },
    closeAll(): void {
      for (const { socket } of sockets.values()) socket.destroy();
    },
  };
}
