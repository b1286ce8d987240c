import { Agent as HttpAgent, type IncomingMessage, request as plainRequest } from 'node:http';
import { Agent as HttpsAgent, request as tlsRequest } from 'node:https';
import type { LookupFunction, Socket } from 'node:net';

/**
 * The one HTTP client: upstream fetches (fetch/upstream.ts), the compile cache's remote cache (cc/remote.ts)
 * and the farm's mutual-TLS client (net/client.ts) all send their requests through here.
 */
export interface HttpRequestOptions {
  method?: string;
  headers?: Record<string, string | number>;
  body?: Buffer | string;
  /** Connection pool (and TLS identity); default: a shared keep-alive agent per protocol. */
  agent?: HttpAgent;
  /** Where the host name resolves (an upstream pinned to the address its guard checked). */
  lookup?: LookupFunction;
  signal?: AbortSignal;
  /** No byte for this long (connecting, waiting for the head, or mid-body) fails the request with `idleError`. */
  idleMs?: number;
  idleError?: () => Error;
  /** Sees the socket the request goes out on (the mTLS client times the handshake on it). */
  onSocket?: (socket: Socket, fail: (err: Error) => void) => void;
}

// Keep-alive: many requests to one host (a prefetch, a build's remote-cache lookups) reuse connections.
const agents = { http: new HttpAgent({ keepAlive: true }), https: new HttpsAgent({ keepAlive: true }) };

/** Sends one request; resolves with the response head, the body unread (the caller streams or reads it). */
export function sendRequest(url: URL, options: HttpRequestOptions = {}): Promise<IncomingMessage> {
  const secure = url.protocol === 'https:';
  return new Promise((resolve, reject) => {
    const req = (secure ? tlsRequest : plainRequest)(
      url,
      {
        method: options.method ?? 'GET',
        agent: options.agent ?? (secure ? agents.https : agents.http),
        headers: options.headers,
        lookup: options.lookup,
        signal: options.signal,
      },
      resolve,
    );
    const fail = (err: Error) => req.destroy(err);
    if (options.idleMs) {
      req.setTimeout(options.idleMs, () =>
        fail(options.idleError?.() ?? new Error(`no answer from ${url.origin} in ${options.idleMs} ms`)),
      );
    }
    if (options.onSocket) req.on('socket', (socket) => options.onSocket?.(socket, fail));
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Sends one request and reads the whole answer. Network failures reject; HTTP statuses resolve. */
export async function fetchBuffer(
  url: URL,
  options: HttpRequestOptions = {},
): Promise<{ status: number; headers: IncomingMessage['headers']; body: Buffer }> {
  const res = await sendRequest(url, options);
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) };
}
