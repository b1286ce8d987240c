import { AccelError, isAccelError } from '../core/errors.ts';
import { resolveUpstream } from '../fetch/guard.ts';
import type { Digest } from '../store/digest.ts';

/**
 * A parent mirror (config `mirror.parent`): another accel mirror this one asks for every miss, with the same
 * mirror path (`/https/H/P`, `/r/<remap>/P`), so a site cache chains to a central one. The parent fetches
 * from the origin with its own guards; this mirror still accepts only what it would accept without one.
 */
export interface Parent {
  /** The parent's base URL, without a trailing slash: `http://central:8000`. */
  base: string;
  /** `host[:port]` of the parent: the one private address this mirror's fetcher may reach for it. */
  host: string;
  /** The `origin` the bearer token (`mirror.parentToken`) is sent to, and no other. */
  origin: string;
}

/** The parent from `mirror.parent` / `--parent`; undefined when empty. */
export function parseParent(value: string, source: string): Parent | undefined {
  const text = value.trim();
  if (text === '') return undefined;
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    url = undefined;
  }
  const problem =
    !url || (url.protocol !== 'http:' && url.protocol !== 'https:') || !url.hostname
      ? 'is not an http or https URL'
      : url.username || url.password
        ? 'carries credentials (use mirror.parentToken for the parent’s bearer token)'
        : url.search || url.hash
          ? 'has a query or fragment'
          : undefined;
  if (!url || problem) {
    throw new AccelError('ACCEL_MIRROR_BAD_PARENT', `${source} '${value}' ${problem}`, {
      hint: `name the parent mirror's base URL, for example ${source} http://central-mirror:8000`,
      exitCode: 2,
    });
  }
  return { base: url.href.replace(/\/+$/, ''), host: url.host, origin: url.origin };
}

/** The parent's URL for a mirror path (`/https/H/P?q`, `/r/name/P`), with the pin the parent checks too. */
export function parentUrl(parent: Parent, mirrorPath: string, pinned?: Digest): string {
  const url = `${parent.base}${mirrorPath}`;
  if (!pinned) return url;
  return `${url}${url.includes('?') ? '&' : '?'}sha256=${pinned}`;
}

/** `/https/H/P?q` for `https://H/P?q`: the path a parent mirror serves that URL at. */
export function mirrorPathOf(url: string): string {
  const u = new URL(url);
  return `/${u.protocol.slice(0, -1)}/${u.host}${u.pathname}${u.search}`;
}

/**
 * Refuses, before anything is forwarded, an origin URL this mirror would refuse without a parent (a client
 * must not reach through the parent what it cannot reach through us: a private or loopback address that
 * `mirror.allow` does not name). A name this machine cannot resolve is the parent's to judge: an edge often
 * has no DNS for the outside world, and the parent resolves and checks it again.
 */
export async function checkOrigin(url: string, allow: readonly string[]): Promise<void> {
  try {
    await resolveUpstream(url, allow);
  } catch (err) {
    if (isAccelError(err) && err.code === 'ACCEL_FETCH_DNS') return;
    throw err;
  }
}

/** Transport failures reaching the parent, as the error a client of this mirror reads (a 502 naming it). */
export function parentDown(parent: Parent, err: unknown): unknown {
  if (!isAccelError(err) || !TRANSPORT.has(err.code)) return err;
  return new AccelError('ACCEL_MIRROR_PARENT_DOWN', `the parent mirror ${parent.base} failed: ${err.message}`, {
    hint: 'this mirror still serves what it holds; start or fix the parent (mirror.parent), or serve with --offline',
    cause: err,
  });
}

const TRANSPORT = new Set([
  'ACCEL_FETCH_UNREACHABLE',
  'ACCEL_FETCH_STALLED',
  'ACCEL_FETCH_TRUNCATED',
  'ACCEL_FETCH_DNS',
  'ACCEL_FETCH_NO_UPSTREAM',
]);

/** What an offline miss says when a parent is configured: it was not asked. */
export function offlineNote(parent: Parent | undefined): string {
  return parent ? ` (offline: its parent mirror ${parent.base} was not asked)` : '';
}
