import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';
import { AccelError } from '../core/errors.ts';

/** Address ranges an upstream must not resolve to unless allowed by name: no request forgery into the LAN. */
const PRIVATE = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  PRIVATE.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const) {
  PRIVATE.addSubnet(net, prefix, 'ipv6');
}

export interface ResolvedUpstream {
  url: URL;
  address: string;
  family: 4 | 6;
}

/**
 * Checks that `url` may be fetched and pins the address it resolved to, so that the connection goes where
 * the check looked (a second DNS answer cannot rebind it). `allow` lists `host` or `host:port` entries that
 * may be private (a registry mirror on the LAN, a test server on loopback).
 */
export async function resolveUpstream(raw: string, allow: readonly string[]): Promise<ResolvedUpstream> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new AccelError('ACCEL_FETCH_BAD_URL', `not a URL: ${raw}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new AccelError('ACCEL_FETCH_BAD_URL', `only http and https upstreams are fetched, not ${url.protocol}`);
  }
  if (url.username || url.password) {
    throw new AccelError('ACCEL_FETCH_BAD_URL', 'upstream URLs with credentials are refused');
  }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const allowed = allow.includes(url.host) || allow.includes(host);
  let addresses: { address: string; family: number }[];
  if (isIP(host)) addresses = [{ address: host, family: isIP(host) }];
  else {
    try {
      addresses = await lookup(host, { all: true });
    } catch (err) {
      throw new AccelError('ACCEL_FETCH_DNS', `cannot resolve ${host}: ${(err as Error).message}`, { cause: err });
    }
  }
  if (!allowed) {
    const bad = addresses.find((a) => isPrivate(a.address, a.family));
    if (bad) {
      throw new AccelError(
        'ACCEL_FETCH_REFUSED',
        `refusing upstream ${url.host}: it resolves to ${bad.address}, a loopback, private or link-local address`,
        { hint: `if this upstream is meant, allow it: --allow ${url.host}` },
      );
    }
  }
  const first = addresses[0];
  if (!first) throw new AccelError('ACCEL_FETCH_DNS', `no address for ${host}`);
  return { url, address: first.address, family: first.family === 6 ? 6 : 4 };
}

function isPrivate(address: string, family: number): boolean {
  if (family === 6) {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
    if (mapped) return PRIVATE.check(mapped, 'ipv4');
    return PRIVATE.check(address, 'ipv6');
  }
  return PRIVATE.check(address, 'ipv4');
}
