import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AccelError } from '../core/errors.ts';
import type { Download, DownloadHead } from '../fetch/download.ts';
import type { BlobInfo } from '../store/cas.ts';
import { type Digest, parseDigest } from '../store/digest.ts';
import { handleCacheRequest, isCachePath } from './cache-routes.ts';
import { handleCondaRequest, isCondaPath } from './conda-routes.ts';
import type { MirrorContext } from './context.ts';
import { isFresh, isImmutableUrl } from './freshness.ts';
import { linkFront } from './front.ts';
import { checkOrigin, mirrorPathOf, offlineNote, parentDown, parentUrl } from './parent.ts';
import { serveBlob, write } from './respond.ts';
import { type CacheStatus, count, noteDownload, noteFailure } from './stats.ts';
import { statusResponse } from './status.ts';
import { parseMirrorPath, type Target } from './url-map.ts';
import { MISSING_NS, type MissingMeta, URL_NS, type UrlMeta } from './url-ref.ts';

/** Longer request targets are refused (414): no legitimate artifact URL comes close. */
const MAX_URL_LENGTH = 8192;

/** What a request asks for once routed: the ref key, the upstream URLs to try, and a pinned digest. */
export interface Wanted {
  key: string;
  candidates: string[];
  pinned?: Digest;
  /** With a parent: the parent's URLs, asked instead of `candidates` (which still decide freshness). */
  viaParent?: string[];
  /** With a parent: a client-named origin URL, checked by our own guard before the parent is asked. */
  origin?: string;
}

/** The URLs a miss is fetched from: the parent's when there is one, else the upstreams. */
export function sourcesOf(ctx: MirrorContext, wanted: Wanted): string[] {
  return ctx.parent && wanted.viaParent ? wanted.viaParent : wanted.candidates;
}

export async function handleRequest(ctx: MirrorContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  ctx.stats.requests++;
  try {
    const raw = req.url ?? '/';
    if (req.method !== 'GET' && req.method !== 'HEAD' && !(req.method === 'PUT' && isCachePath(raw))) {
      return sendError(ctx, res, 405, `method ${req.method} not allowed: the mirror serves GET and HEAD`);
    }
    if (ctx.token && req.headers.authorization !== `Bearer ${ctx.token}`) {
      res.setHeader('www-authenticate', 'Bearer realm="accel"');
      return sendError(ctx, res, 401, 'missing or wrong bearer token');
    }
    if (req.method === 'PUT' && !mayWriteCache(ctx, req.headers.authorization)) {
      res.setHeader('www-authenticate', 'Bearer realm="accel-cache"');
      return sendError(
        ctx,
        res,
        401,
        'writing to the build cache needs its token (Authorization: Bearer …); `accel mirror config cache` prints it',
      );
    }
    if (raw.length > MAX_URL_LENGTH) return sendError(ctx, res, 414, 'request target too long');
    if (raw.startsWith('/_accel/')) return statusResponse(ctx, raw, res);
    if (isCachePath(raw)) return await handleCacheRequest(ctx, req, res);
    if (isCondaPath(raw)) return await handleCondaRequest(ctx, req, res);
    const target = raw.startsWith('http://') ? proxyTarget(ctx, raw) : parseMirrorPath(raw);
    if (target.kind === 'remap') return await serveRemap(ctx, req, res, target.name, target.path);
    await serveWanted(ctx, req, res, direct(ctx, target.url));
  } catch (err) {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const [status, message] = httpError(err);
    if (status >= 500) ctx.log.warn(`${req.method} ${req.url}: ${message}`);
    if (err instanceof AccelError) res.setHeader('x-accel-error', err.code);
    sendError(ctx, res, status, message);
  }
}

export function direct(ctx: MirrorContext, url: string): Wanted {
  const { rest, pinned } = takePin(url);
  if (!ctx.parent) return { key: rest, candidates: [rest], pinned };
  return {
    key: rest,
    candidates: [rest],
    pinned,
    viaParent: [parentUrl(ctx.parent, mirrorPathOf(rest), pinned)],
    origin: rest,
  };
}

/**
 * Forward-proxy requests (`GET http://host/path`, apt's Acquire::http::Proxy): a URL under a remap's
 * upstream goes through that remap (apt epochs included); other hosts only if listed in mirror.proxyHosts.
 * Anything else is refused: the mirror is never an open proxy.
 */
function proxyTarget(ctx: MirrorContext, raw: string): Target {
  for (const [name, bases] of Object.entries(ctx.remaps)) {
    for (const base of bases) {
      const prefix = `${base.replace(/\/+$/, '')}/`;
      if (raw.startsWith(prefix)) return { kind: 'remap', name, path: raw.slice(prefix.length) };
    }
  }
  let host: string;
  try {
    host = new URL(raw).host;
  } catch {
    throw new AccelError('ACCEL_MIRROR_BAD_PATH', 'malformed proxy request URL');
  }
  if (!ctx.proxyHosts.includes(host)) {
    throw new AccelError('ACCEL_FETCH_REFUSED', `not an open proxy: ${host} is not a configured upstream`, {
      hint: 'add it to mirror.proxyHosts or configure a remap whose upstream is on that host',
    });
  }
  return { kind: 'direct', url: raw };
}

async function serveRemap(ctx: MirrorContext, req: IncomingMessage, res: ServerResponse, nameAt: string, path: string) {
  const [name = '', epoch] = nameAt.split('@');
  const bases = ctx.remaps[name];
  if (!bases) throw new AccelError('ACCEL_MIRROR_NOT_FOUND', `no remap named '${name}' (config mirror.remaps)`);
  const { rest, pinned } = takePin(path);
  const decision = await ctx.apt.decide(name, bases, epoch, rest);
  if (decision.kind === 'error') return sendError(ctx, res, decision.status, decision.message);
  if (decision.kind === 'blob') {
    // The epoch travels with its release files: a mirror below this one fetches the indexes of that epoch.
    res.setHeader('x-accel-epoch', decision.epoch);
    if (await serveStored(ctx, req, res, decision.digest, decision.status)) return;
    return sendError(ctx, res, 502, 'the epoch file vanished from the store');
  }
  return serveWanted(ctx, req, res, { ...decision, pinned: pinned ?? decision.pinned });
}

/** Removes our `sha256=` query parameter (it pins content, the upstream never sees it). */
function takePin(pathOrUrl: string): { rest: string; pinned?: Digest } {
  const q = pathOrUrl.indexOf('?');
  if (q < 0) return { rest: pathOrUrl };
  const params = new URLSearchParams(pathOrUrl.slice(q + 1));
  const pin = params.get('sha256');
  if (pin === null) return { rest: pathOrUrl };
  params.delete('sha256');
  const query = params.toString();
  return { rest: pathOrUrl.slice(0, q) + (query ? `?${query}` : ''), pinned: parseDigest(pin) };
}

async function serveWanted(ctx: MirrorContext, req: IncomingMessage, res: ServerResponse, wanted: Wanted) {
  const { store } = ctx;
  if (wanted.pinned && store.has(wanted.pinned)) {
    // Content named by its checksum is the same whichever URL asked for it, so this request is answered from
    // the store; but the URL is not bound to it: only bytes the upstream sent for a URL ever answer it unpinned
    // (a client could otherwise pin any stored blob to any URL, for everyone).
    if (await serveStored(ctx, req, res, wanted.pinned, 'HIT')) return;
  }
  const ref = store.refs.get(URL_NS, wanted.key);
  const meta = ref?.meta as UrlMeta | undefined;
  if (ref && meta && (!wanted.pinned || ref.digest === wanted.pinned) && store.has(ref.digest)) {
    if (ctx.offline || isFresh(meta, ctx.now(), ctx.policy)) {
      if (await serveStored(ctx, req, res, ref.digest, 'HIT', meta.contentType)) return;
    } else {
      return revalidate(ctx, req, res, wanted, ref.digest, meta);
    }
  }
  const twin = pinnedTwin(ctx, wanted);
  if (twin && (await serveStored(ctx, req, res, twin.digest, 'HIT', twin.contentType))) return;
  const missing = store.refs.get(MISSING_NS, wanted.key)?.meta as MissingMeta | undefined;
  if (missing && (ctx.offline || ctx.now() - missing.at < ctx.policy.negativeTtlSeconds * 1000)) {
    ctx.stats.errors++;
    const when = new Date(missing.at).toISOString();
    const body = `upstream answered ${missing.status} for ${wanted.candidates[0]} (remembered from ${when})\n`;
    res.writeHead(missing.status, { 'content-type': 'text/plain; charset=utf-8', 'x-accel-cache': 'HIT' }).end(body);
    return;
  }
  if (ctx.offline) {
    ctx.stats.errors++;
    res.setHeader('x-accel-error', 'ACCEL_MIRROR_OFFLINE');
    noteFailure(ctx.stats, wanted.candidates[0] ?? wanted.key, 504, 'offline, and not in the store', ctx.now(), false);
    const body = `accel mirror is offline and has no copy of ${wanted.candidates[0]}${offlineNote(ctx.parent)}\n`;
    res.writeHead(504, { 'content-type': 'text/plain; charset=utf-8', 'x-accel-cache': 'MISS' }).end(body);
    return;
  }
  return fetchAndServe(ctx, req, res, wanted);
}

/**
 * The copy stored for the same URL under `http://`, when an `https://` URL has none and that copy was checked
 * against a digest a client or a workspace named. Bazel 4's downloader config drops the scheme, so a
 * workspace's `http://host/x` arrives as `/https/host/x`, while `mirror prefetch`/`import` stored it under
 * `http://`; with the content pinned, the scheme it came over does not matter. Unpinned copies never cross.
 */
export function pinnedTwin(ctx: MirrorContext, wanted: Wanted): { digest: Digest; contentType?: string } | undefined {
  if (!wanted.key.startsWith('https://')) return undefined;
  const ref = ctx.store.refs.get(URL_NS, `http://${wanted.key.slice('https://'.length)}`);
  const meta = ref?.meta as UrlMeta | undefined;
  if (!ref || !meta?.pinned || (wanted.pinned && wanted.pinned !== ref.digest) || !ctx.store.has(ref.digest)) {
    return undefined;
  }
  return { digest: ref.digest, contentType: meta.contentType };
}

async function serveStored(
  ctx: MirrorContext,
  req: IncomingMessage,
  res: ServerResponse,
  digest: Digest,
  status: CacheStatus,
  contentType?: string,
): Promise<boolean> {
  const served = await serveBlob(req, res, ctx.store, digest, {
    status,
    contentType,
    stats: ctx.stats,
    verified: ctx.verified,
  });
  if (served) count(ctx.stats, status);
  return served;
}

/** Asks the upstream whether our copy is current; serves it as STALE when the upstream cannot say. */
async function revalidate(
  ctx: MirrorContext,
  req: IncomingMessage,
  res: ServerResponse,
  wanted: Wanted,
  digest: Digest,
  meta: UrlMeta,
): Promise<void> {
  if (wanted.origin) await checkOrigin(wanted.origin, ctx.allow);
  const sources = sourcesOf(ctx, wanted);
  const { download, joined } = ctx.fetcher.fetch(
    `revalidate ${wanted.key}`,
    { candidates: sources, conditional: { etag: meta.etag, lastModified: meta.lastModified } },
    (info, head) => recordRef(ctx, wanted, info, head),
  );
  watch(ctx, download, sources[0] ?? wanted.key, joined);
  const head = await download.head;
  if (head.kind === 'not-modified') {
    ctx.store.refs.set(URL_NS, wanted.key, digest, { ...meta, fetchedAt: ctx.now() } satisfies UrlMeta);
    if (await serveStored(ctx, req, res, digest, 'REVALIDATED', meta.contentType)) return;
    return fetchAndServe(ctx, req, res, wanted);
  }
  if (head.kind === 'body') return streamDownload(ctx, req, res, wanted, download, head);
  if (head.status === 404 || head.status === 410) {
    await rememberMissing(ctx, wanted, head.status);
    return sendError(ctx, res, head.status, `${upstreamName(ctx)} answered ${head.status} for ${head.url}`);
  }
  ctx.stats.upstreamErrors++;
  await serveStored(ctx, req, res, digest, 'STALE', meta.contentType);
}

/** Follows a download for the status page: what it fetched, or why it failed. */
export function watch(ctx: MirrorContext, download: Download, url: string, joined: boolean): void {
  if (joined) return;
  const started = performance.now();
  download.done.then(
    (info) => {
      if (info) noteDownload(ctx.stats, url, info.size, performance.now() - started, ctx.now());
    },
    (err: unknown) => {
      const [status, message] = httpError(err);
      noteFailure(ctx.stats, url, status, message, ctx.now(), status >= 502);
    },
  );
}

async function fetchAndServe(ctx: MirrorContext, req: IncomingMessage, res: ServerResponse, wanted: Wanted) {
  if (wanted.origin) await checkOrigin(wanted.origin, ctx.allow);
  const sources = sourcesOf(ctx, wanted);
  const { download, joined } = ctx.fetcher.fetch(
    wanted.pinned ? `${wanted.key} sha256=${wanted.pinned}` : wanted.key,
    { candidates: sources, expected: wanted.pinned },
    (info, head) => recordRef(ctx, wanted, info, head),
  );
  watch(ctx, download, sources[0] ?? wanted.key, joined);
  const head = await download.head;
  if (head.kind !== 'body') {
    const status = head.kind === 'status' ? head.status : 502;
    if (status !== 404 && status !== 410 && status !== 403) ctx.stats.upstreamErrors++;
    // Rethrows a refusal or network failure, mapped by httpError; the parent's failure names the parent.
    const { parent } = ctx;
    await (parent ? download.done.catch((err: unknown) => Promise.reject(parentDown(parent, err))) : download.done);
    if (!joined) {
      noteFailure(ctx.stats, head.url, status, `upstream answered ${status}`, ctx.now(), status >= 500);
    }
    if (status === 404 || status === 410) await rememberMissing(ctx, wanted, status);
    return sendError(
      ctx,
      res,
      status === 404 || status === 410 ? status : 502,
      `${upstreamName(ctx)} answered ${status} for ${head.url}`,
    );
  }
  return streamDownload(ctx, req, res, wanted, download, head);
}

/**
 * Sends a download as it arrives. A pinned checksum or a Range request waits for the complete, verified
 * blob instead: a mismatch must be a 502, and a range is served from the store.
 */
async function streamDownload(
  ctx: MirrorContext,
  req: IncomingMessage,
  res: ServerResponse,
  wanted: Wanted,
  download: Download,
  head: Extract<DownloadHead, { kind: 'body' }>,
): Promise<void> {
  if (wanted.pinned || req.headers.range) {
    const info = await download.done;
    if (!info || !(await serveStored(ctx, req, res, info.digest, 'MISS', head.contentType))) {
      throw new AccelError('ACCEL_FETCH_TRUNCATED', `download of ${head.url} did not complete`);
    }
    return;
  }
  const headers: Record<string, string | number> = {
    'content-type': head.contentType ?? 'application/octet-stream',
    'x-accel-cache': 'MISS',
  };
  if (head.contentLength !== undefined) headers['content-length'] = head.contentLength;
  if (req.method === 'HEAD') {
    count(ctx.stats, 'MISS');
    res.writeHead(200, headers).end();
    return;
  }
  // The status line waits for the first byte: a download that fails before it is a 502, not a broken 200.
  const chunks = download.read();
  const first = await chunks.next();
  count(ctx.stats, 'MISS');
  res.writeHead(200, headers);
  try {
    if (!first.done) await write(res, first.value, ctx.stats);
    for await (const chunk of chunks) await write(res, chunk, ctx.stats);
    res.end();
  } catch {
    // The upstream failed, or the client left: a broken connection, never a short body that looks complete.
    res.destroy();
  }
}

/** Keeps an upstream's 404/410 (see MissingMeta); a later 200 for the URL forgets it. */
export async function rememberMissing(ctx: MirrorContext, wanted: Wanted, status: 404 | 410): Promise<void> {
  const answer = await ctx.store.putBuffer(Buffer.from(`${status}\n`));
  ctx.store.refs.set(MISSING_NS, wanted.key, answer.digest, { status, at: ctx.now() } satisfies MissingMeta);
}

export function recordRef(ctx: MirrorContext, wanted: Wanted, info: BlobInfo, head: DownloadHead): void {
  ctx.store.refs.delete(MISSING_NS, wanted.key);
  const body = head.kind === 'body' ? head : undefined;
  const meta: UrlMeta = {
    immutable: wanted.pinned !== undefined || isImmutableUrl(wanted.candidates[0] ?? wanted.key, ctx.policy),
    fetchedAt: ctx.now(),
    etag: body?.etag,
    lastModified: body?.lastModified,
    contentType: body?.contentType,
    ...(wanted.pinned !== undefined ? { pinned: true } : {}),
  };
  ctx.store.refs.set(URL_NS, wanted.key, info.digest, meta);
  if (meta.immutable) linkFront(ctx.store, wanted.key, info.digest);
}

export function upstreamName(ctx: MirrorContext): string {
  return ctx.parent ? `the parent mirror ${ctx.parent.base}` : 'upstream';
}

function httpError(err: unknown): [number, string] {
  if (!(err instanceof AccelError)) return [500, `internal error: ${(err as Error)?.message ?? err}`];
  const [status, message] = errorStatus(err);
  return [status, err.hint ? `${message}\nhint: ${err.hint}` : message];
}

function errorStatus(err: AccelError): [number, string] {
  switch (err.code) {
    case 'ACCEL_MIRROR_BAD_PATH':
    case 'ACCEL_STORE_BAD_DIGEST':
      return [400, err.message];
    case 'ACCEL_MIRROR_NOT_FOUND':
      return [404, err.message];
    case 'ACCEL_FETCH_REFUSED':
    case 'ACCEL_FETCH_BAD_URL':
      return [403, err.message];
    case 'ACCEL_FS_NO_SPACE':
      return [507, `the mirror's store is full: ${err.message}`];
    case 'ACCEL_STORE_DIGEST_MISMATCH':
      return [502, `upstream content does not match the pinned sha256: ${err.message}`];
    case 'ACCEL_MIRROR_PARENT_DOWN':
      return [502, err.message];
    default:
      return err.code.startsWith('ACCEL_FETCH_') ? [502, err.message] : [500, err.message];
  }
}

function sendError(ctx: MirrorContext, res: ServerResponse, status: number, message: string): void {
  ctx.stats.errors++;
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' }).end(`${message}\n`);
}

/** A write to the shared build cache carries the cache token (or the mirror's own token, which gates all). */
export function mayWriteCache(ctx: MirrorContext, authorization: string | undefined): boolean {
  const offered = /^Bearer (.+)$/.exec(authorization ?? '')?.[1];
  if (offered === undefined) return false;
  return [ctx.cacheToken, ctx.token].some((t) => t !== '' && safeEqual(t, offered));
}

export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
