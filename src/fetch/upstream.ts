import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';
import { AccelError } from '../core/errors.ts';
import type { ResolvedUpstream } from './guard.ts';

export interface UpstreamRequest {
  upstream: ResolvedUpstream;
  method?: 'GET' | 'HEAD';
  headers?: Record<string, string>;
  /** No byte for this long (connecting, waiting for headers, or mid-body) aborts the request. */
  stallMs: number;
  userAgent: string;
}

// Keep-alive: a prefetch of many files from one host reuses connections.
const agents = { http: new HttpAgent({ keepAlive: true }), https: new HttpsAgent({ keepAlive: true }) };

/** Sends one request to an upstream at its pinned address; resolves with the response head, body unread. */
export function requestUpstream(req: UpstreamRequest): Promise<IncomingMessage> {
  const { url, address, family } = req.upstream;
  const secure = url.protocol === 'https:';
  // Connect to the address the guard checked, whatever DNS says now.
  const pinned: LookupFunction = (_host, options, callback) => {
    if (options.all)
      (callback as (e: null, a: { address: string; family: number }[]) => void)(null, [{ address, family }]);
    else callback(null, address, family);
  };
  return new Promise((resolve, reject) => {
    const request = (secure ? httpsRequest : httpRequest)(
      url,
      {
        method: req.method ?? 'GET',
        agent: secure ? agents.https : agents.http,
        lookup: pinned,
        headers: { 'accept-encoding': 'identity', 'user-agent': req.userAgent, ...req.headers },
      },
      resolve,
    );
    request.setTimeout(req.stallMs, () => {
      request.destroy(
        new AccelError('ACCEL_FETCH_STALLED', `${url.host} sent nothing for ${req.stallMs / 1000} s: ${url.href}`),
      );
    });
    request.on('error', reject);
    request.end();
  });
}
