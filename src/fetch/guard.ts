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
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
] as const) {
  PRIVATE.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
  ['fec0::', 10],
  ['64:ff9b:1::', 48],
  ['2001::', 32],
  ['2001:db8::', 32],
  ['100::', 64],
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
  if (family !== 6) return PRIVATE.check(address, 'ipv4');
  const embedded = embeddedIpv4(address);
  if (embedded !== undefined && PRIVATE.check(embedded, 'ipv4')) return true;
  return PRIVATE.check(address, 'ipv6');
}

/**
 * The IPv4 address an IPv6 address carries, in the forms that reach it: mapped (::ffff:a.b.c.d), translated
 * (::ffff:0:a.b.c.d), compatible (::a.b.c.d), NAT64 (64:ff9b::a.b.c.d) and 6to4 (2002:aabb:ccdd::). A
 * loopback or private address hidden in one of them is refused like the address itself.
 */
export function embeddedIpv4(address: string): string | undefined {
  const words = ipv6Words(address);
  if (!words) return undefined;
  const v4 = (hi: number, lo: number) => `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  const zero = (from: number, to: number) => words.slice(from, to).every((w) => w === 0);
  const [w0, w1, w2, , w4, w5, w6, w7] = words as [number, number, number, number, number, number, number, number];
  if (zero(0, 5) && (w5 === 0xffff || w5 === 0)) return v4(w6, w7);
  if (zero(0, 4) && w4 === 0xffff && w5 === 0) return v4(w6, w7);
  if (w0 === 0x64 && w1 === 0xff9b && zero(2, 6)) return v4(w6, w7);
  if (w0 === 0x2002) return v4(w1, w2);
  return undefined;
}

/** The eight 16-bit words of an IPv6 address (with `::` and a trailing dotted IPv4), or undefined. */
function ipv6Words(address: string): number[] | undefined {
  let text = address.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  const dotted = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (dotted) {
    const b = dotted.slice(1).map(Number) as [number, number, number, number];
    if (b.some((x) => x > 255)) return undefined;
    text = `${text.slice(0, dotted.index)}${((b[0] << 8) | b[1]).toString(16)}:${((b[2] << 8) | b[3]).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const part = (s: string) => (s === '' ? [] : s.split(':').map((h) => Number.parseInt(h, 16)));
  const head = part(halves[0] as string);
  const tail = halves.length === 2 ? part(halves[1] as string) : [];
  const fill = 8 - head.length - tail.length;
  if (halves.length === 1 ? fill !== 0 : fill < 0) return undefined;
  const words = [...head, ...Array(fill).fill(0), ...tail];
  return words.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffff) ? words : undefined;
}
