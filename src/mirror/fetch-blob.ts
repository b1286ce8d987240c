import { randomUUID } from 'node:crypto';
import { AccelError } from '../core/errors.ts';
import type { OriginHeaders } from '../fetch/download.ts';
import type { Digest } from '../store/digest.ts';
import type { MirrorContext } from './context.ts';
import { isFresh } from './freshness.ts';
import {
  direct,
  pinnedTwin,
  recordRef,
  rememberMissing,
  sourcesOf,
  upstreamName,
  type Wanted,
  watch,
} from './handler.ts';
import { checkOrigin, mirrorPathOf, offlineNote, parentDown } from './parent.ts';
import { count } from './stats.ts';
import { parseMirrorPath } from './url-map.ts';
import { MISSING_NS, URL_NS, type UrlMeta } from './url-ref.ts';

/** What a FetchBlob (or any caller that wants a URL in the store, not on a socket) asks for. */
export interface BlobRequest {
  url: string;
  pinned?: Digest;
  /** Sent to the URL's own origin only (and on redirect hops that stay there). */
  headers?: Record<string, string>;
  /** A stored copy fetched before this time (ms) is not good enough: fetch or revalidate it. */
  oldestAcceptedMs?: number;
}

export interface StoredUrl {
  digest: Digest;
  size: number;
  /** HIT from the store, MISS fetched now, REVALIDATED confirmed by the upstream. */
  status: 'HIT' | 'MISS' | 'REVALIDATED';
}

/**
 * A URL into the store by the same rules as `GET /<scheme>/<host>/<path>`: the same ref (a file fetched by
 * either is a hit for the other), pins, freshness, remembered 404s, offline mode, the allowlist and address
 * guards on every hop, and coalescing with downloads already running. Failures are AccelErrors naming the URL:
 * ACCEL_MIRROR_OFFLINE, ACCEL_MIRROR_UPSTREAM_STATUS, and the fetch layer's (refusals, mismatches, network).
 */
export async function fetchToStore(ctx: MirrorContext, request: BlobRequest): Promise<StoredUrl> {
  const target = parseMirrorPath(mirrorPathOf(request.url));
  if (target.kind !== 'direct') throw new AccelError('ACCEL_MIRROR_BAD_PATH', `not a direct URL: ${request.url}`);
  const wanted: Wanted = { ...direct(ctx, target.url), pinned: request.pinned };
  const { store } = ctx;
  const hit = (digest: Digest, status: StoredUrl['status'] = 'HIT'): StoredUrl | undefined => {
    const size = store.stat(digest)?.size;
    if (size === undefined) return undefined;
    count(ctx.stats, status);
    return { digest, size, status };
  };
  // Content named by its checksum is the same whichever URL asked for it (see serveWanted in handler.ts).
  if (wanted.pinned && store.has(wanted.pinned)) {
    const found = hit(wanted.pinned);
    if (found) return found;
  }
  const ref = store.refs.get(URL_NS, wanted.key);
  const meta = ref?.meta as UrlMeta | undefined;
  const oldEnough = meta !== undefined && meta.fetchedAt >= (request.oldestAcceptedMs ?? 0);
  if (ref && meta && (!wanted.pinned || ref.digest === wanted.pinned) && store.has(ref.digest)) {
    if (oldEnough && (ctx.offline || isFresh(meta, ctx.now(), ctx.policy))) {
      const found = hit(ref.digest);
      if (found) return found;
    } else if (!ctx.offline) {
      return fetchUrl(ctx, wanted, request.headers, { digest: ref.digest, meta });
    }
  }
  const twin = request.oldestAcceptedMs === undefined ? pinnedTwin(ctx, wanted) : undefined;
  const found = twin && hit(twin.digest);
  if (found) return found;
  const missing = store.refs.get(MISSING_NS, wanted.key)?.meta as { status: 404 | 410; at: number } | undefined;
  if (missing && (ctx.offline || ctx.now() - missing.at < ctx.policy.negativeTtlSeconds * 1000)) {
    ctx.stats.errors++;
    const when = new Date(missing.at).toISOString();
    throw upstreamStatus(
      `upstream answered ${missing.status} for ${request.url} (remembered from ${when})`,
      missing.status,
    );
  }
  if (ctx.offline) {
    ctx.stats.errors++;
    const stale = ref && !oldEnough ? ' newer than oldest_content_accepted' : '';
    throw new AccelError(
      'ACCEL_MIRROR_OFFLINE',
      `accel mirror is offline and has no copy${stale} of ${request.url}${offlineNote(ctx.parent)}`,
      { hint: 'serve the mirror online once (or `accel mirror prefetch`) to store it' },
    );
  }
  return fetchUrl(ctx, wanted, request.headers);
}

/** Fetches (or, with a stored copy, revalidates) a URL; resolves once the blob is complete in the store. */
async function fetchUrl(
  ctx: MirrorContext,
  wanted: Wanted,
  headers: Record<string, string> | undefined,
  stored?: { digest: Digest; meta: UrlMeta },
): Promise<StoredUrl> {
  if (wanted.origin) await checkOrigin(wanted.origin, ctx.allow);
  const sources = sourcesOf(ctx, wanted);
  const originHeaders: OriginHeaders[] =
    headers && Object.keys(headers).length > 0 ? [{ origin: new URL(wanted.key).origin, headers }] : [];
  const conditional = stored && { etag: stored.meta.etag, lastModified: stored.meta.lastModified };
  // With headers the request is this client's own: it joins no other download and no other joins it.
  const own = originHeaders.length > 0 ? `headers ${randomUUID()} ` : '';
  const key = `${own}${conditional ? 'revalidate ' : ''}${wanted.key}${wanted.pinned ? ` sha256=${wanted.pinned}` : ''}`;
  const { download, joined } = ctx.fetcher.fetch(
    key,
    { candidates: sources, expected: wanted.pinned, originHeaders, ...(conditional ? { conditional } : {}) },
    (info, head) => recordRef(ctx, wanted, info, head),
  );
  watch(ctx, download, sources[0] ?? wanted.key, joined);
  const head = await download.head;
  const { parent } = ctx;
  const info = await (parent
    ? download.done.catch((err: unknown) => Promise.reject(parentDown(parent, err)))
    : download.done);
  if (head.kind === 'not-modified' && stored) {
    ctx.store.refs.set(URL_NS, wanted.key, stored.digest, { ...stored.meta, fetchedAt: ctx.now() } satisfies UrlMeta);
    const size = ctx.store.stat(stored.digest)?.size;
    if (size !== undefined) {
      count(ctx.stats, 'REVALIDATED');
      return { digest: stored.digest, size, status: 'REVALIDATED' };
    }
    return fetchUrl(ctx, wanted, headers);
  }
  if (head.kind === 'status') {
    if (head.status !== 404 && head.status !== 410 && head.status !== 403) ctx.stats.upstreamErrors++;
    if (head.status === 404 || head.status === 410) await rememberMissing(ctx, wanted, head.status);
    ctx.stats.errors++;
    throw upstreamStatus(`${upstreamName(ctx)} answered ${head.status} for ${head.url}`, head.status);
  }
  if (!info) throw new AccelError('ACCEL_FETCH_TRUNCATED', `download of ${wanted.key} did not complete`);
  count(ctx.stats, 'MISS');
  return { digest: info.digest, size: info.size, status: 'MISS' };
}

/** An upstream's answer other than 200: ACCEL_MIRROR_UPSTREAM_NOT_FOUND for 404/410, else _STATUS. */
function upstreamStatus(message: string, status: number): AccelError {
  const gone = status === 404 || status === 410;
  return new AccelError(gone ? 'ACCEL_MIRROR_UPSTREAM_NOT_FOUND' : 'ACCEL_MIRROR_UPSTREAM_STATUS', message, {
    hint: gone ? 'check the URL' : 'the upstream refused or failed; try again later',
  });
}
