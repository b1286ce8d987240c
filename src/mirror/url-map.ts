import { AccelError } from '../core/errors.ts';

/**
 * The mirror's URL layout: `/<scheme>/<host[:port]>/<path>?<query>` stands for `<scheme>://<host>/<path>?<query>`,
 * so a tool's URL is rewritten by prefixing it (Bazel's downloader config does exactly that with one regex).
 */
const SCHEMES = ['http', 'https'] as const;

/** The mirror URL that serves `upstream` through the mirror at `base` (e.g. http://127.0.0.1:8000). */
export function mirrorUrlFor(upstream: string, base: string): string {
  const url = new URL(upstream);
  const scheme = url.protocol.slice(0, -1);
  if (!(SCHEMES as readonly string[]).includes(scheme)) {
    throw new AccelError('ACCEL_MIRROR_BAD_SCHEME', `only http and https URLs can be mirrored, not ${upstream}`);
  }
  return `${base.replace(/\/+$/, '')}/${scheme}/${url.host}${url.pathname}${url.search}`;
}

/** Where a mirror request path points: a direct upstream URL, or a named remap and the rest of the path. */
export type Target = { kind: 'direct'; url: string } | { kind: 'remap'; name: string; path: string };

/**
 * Parses a request's raw path (as sent, still percent-encoded). Rejects traversal in any spelling: `..`
 * segments, `%2e%2e`, encoded slashes or backslashes, NUL; those are 400s, never a fetch.
 */
export function parseMirrorPath(rawPath: string): Target {
  const [path = '', ...rest] = rawPath.split('?');
  const query = rest.length > 0 ? `?${rest.join('?')}` : '';
  if (/%2f|%5c|%00|\\/i.test(path)) throw badPath(rawPath, 'encoded slash, backslash or NUL');
  const segments = path.split('/').slice(1);
  for (const segment of segments) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      throw badPath(rawPath, 'malformed percent-encoding');
    }
    if (decoded === '..' || decoded === '.') throw badPath(rawPath, 'dot segment');
  }
  const [first, second, ...tail] = segments;
  if (first === 'r' && second) {
    return { kind: 'remap', name: second, path: tail.join('/') + query };
  }
  if (first && (SCHEMES as readonly string[]).includes(first) && second) {
    if (!/^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/.test(second)) throw badPath(rawPath, 'bad host');
    return { kind: 'direct', url: `${first}://${second}/${tail.join('/')}${query}` };
  }
  throw new AccelError('ACCEL_MIRROR_NOT_FOUND', `no such mirror path: ${rawPath}`, {
    hint: 'use /<http|https>/<host>/<path> or /r/<remap name>/<path>',
  });
}

function badPath(rawPath: string, why: string): AccelError {
  return new AccelError('ACCEL_MIRROR_BAD_PATH', `refused path ${JSON.stringify(rawPath.slice(0, 200))}: ${why}`);
}
