import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { AccelError, errnoCode } from '../core/errors.ts';
import { type ConnectionLimits, DEFAULT_CONNECTION_LIMITS, guardConnections, serverTimeouts } from './connections.ts';
import { type Identity, type Role, roleFromOu } from './tls-identity.ts';

/** Who is on the other end of a mutual-TLS connection, from its verified certificate. */
export interface Peer {
  name: string;
  role: Role | undefined;
}

export type MtlsHandler = (req: IncomingMessage, res: ServerResponse, peer: Peer) => Promise<void> | void;

export interface MtlsServer {
  listen(): Promise<AddressInfo>;
  address(): AddressInfo | undefined;
  /** Stops listening and ends every open connection (long polls included). */
  close(): Promise<void>;
}

/**
 * An HTTPS server that accepts only peers whose certificate this installation's CA signed: the TLS layer
 * rejects everything else before a request is read (no certificate, another CA's).
 */
export function createMtlsServer(options: {
  identity: Identity;
  host: string;
  port: number;
  handler: MtlsHandler;
  onError?: (err: unknown) => void;
  connections?: ConnectionLimits;
}): MtlsServer {
  // Authenticated peers keep their connections between long polls: a longer keep-alive than the mirror's.
  const limits = options.connections ?? { ...DEFAULT_CONNECTION_LIMITS, max: 1024, keepAliveMs: 60_000 };
  // getPeerCertificate() builds a large object each call; a connection's peer never changes.
  const peers = new WeakMap<object, Peer>();
  const server = createHttpsServer(
    {
      key: options.identity.key,
      cert: options.identity.cert,
      ca: options.identity.ca,
      requestCert: true,
      rejectUnauthorized: true,
      // A TLS handshake that does not finish is a half-open connection holding a slot.
      handshakeTimeout: 10_000,
      ...serverTimeouts(limits),
    },
    (req, res) => {
      let peer = peers.get(req.socket);
      if (!peer) {
        const cert = (req.socket as TLSSocket).getPeerCertificate();
        peer = { name: String(cert.subject?.CN ?? ''), role: roleFromOu(cert.subject?.OU) };
        peers.set(req.socket, peer);
      }
      const who = peer;
      Promise.resolve(options.handler(req, res, who)).catch((err: unknown) => {
        options.onError?.(err);
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ code: 'ACCEL_FARM_INTERNAL', message: String((err as Error)?.message ?? err) }));
      });
    },
  );
  // Long polls must not be cut by Node's default request timeout.
  server.requestTimeout = 0;
  const connections = guardConnections(server, limits);
  server.on('tlsClientError', () => {});
  return {
    listen: () =>
      new Promise((resolve, reject) => {
        server.once('error', (err) => reject(listenError(err, options.host, options.port)));
        server.listen(options.port, options.host, () => {
          server.off('error', reject);
          resolve(server.address() as AddressInfo);
        });
      }),
    address: () => (server.address() as AddressInfo | null) ?? undefined,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        connections.closeAll();
      }),
  };
}

/** A listen() failure a user causes (port in use, an address not of this machine) as a usage error naming it. */
export function listenError(err: unknown, host: string, port: number): unknown {
  const code = errnoCode(err);
  if (code === 'EADDRINUSE') {
    return new AccelError('ACCEL_NET_PORT_IN_USE', `${host}:${port} is already in use`, {
      hint: 'stop the other server or choose another --port',
      exitCode: 2,
    });
  }
  if (code === 'EACCES' || code === 'EADDRNOTAVAIL') {
    return new AccelError('ACCEL_NET_CANNOT_LISTEN', `cannot listen on ${host}:${port} (${code})`, {
      hint: 'use a port above 1023 and an address of this machine',
      exitCode: 2,
    });
  }
  return err;
}

/** Reads a request body up to `limit` bytes. */
export function readBody(req: IncomingMessage, limit = 256 * 1024 * 1024): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new Error('request body too large'));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = Buffer.from(JSON.stringify(value));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': body.length });
  res.end(body);
}

/** An error body with the same code/message/hint shape as AccelError. */
export function sendError(res: ServerResponse, status: number, code: string, message: string, hint?: string): void {
  sendJson(res, status, { code, message, hint });
}
