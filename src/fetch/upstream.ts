import type { IncomingMessage } from 'node:http';
import type { LookupFunction } from 'node:net';
import { AccelError } from '../core/errors.ts';
import { sendRequest } from '../net/http.ts';
import type { ResolvedUpstream } from './guard.ts';

export interface UpstreamRequest {
  upstream: ResolvedUpstream;
  method?: 'GET' | 'HEAD';
  headers?: Record<string, string>;
  /** No byte for this long (connecting, waiting for headers, or mid-body) aborts the request. */
  stallMs: number;
  userAgent: string;
}

/** Sends one request to an upstream at its pinned address; resolves with the response head, body unread. */
export function requestUpstream(req: UpstreamRequest): Promise<IncomingMessage> {
  const { url, address, family } = req.upstream;
  // Connect to the address the guard checked, whatever DNS says now.
  const pinned: LookupFunction = (_host, options, callback) => {
    if (options.all)
      (callback as (e: null, a: { address: string; family: number }[]) => void)(null, [{ address, family }]);
    else callback(null, address, family);
  };
  return sendRequest(url, {
    method: req.method ?? 'GET',
    lookup: pinned,
    headers: { 'accept-encoding': 'identity', 'user-agent': req.userAgent, ...req.headers },
    idleMs: req.stallMs,
    idleError: () =>
      new AccelError('ACCEL_FETCH_STALLED', `${url.host} sent nothing for ${req.stallMs / 1000} s: ${url.href}`),
  });
}
