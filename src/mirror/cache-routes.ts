import type { IncomingMessage, ServerResponse } from 'node:http';
import { AccelError } from '../core/errors.ts';
import { ReapiStorage } from '../reapi/storage.ts';
import type { BlobInfo } from '../store/cas.ts';
import type { Digest } from '../store/digest.ts';
import { CACHE_AC_NS } from '../store/refs.ts';
import type { MirrorContext } from './context.ts';
import { serveBlob } from './respond.ts';
import type { MirrorStats } from './stats.ts';

/**
 * The shared build cache on the mirror's port, in Bazel's HTTP remote-cache layout (ccache's http storage
 * speaks it with `layout=bazel`):
 *   /cache/cas/<sha256>   a blob named by its content; a PUT must hash to that name
 *   /cache/ac/<64 hex>    an action-cache entry: any bytes, stored as a blob and named by a ref in `cache-ac`
 * Both go through the REAPI storage (src/reapi/storage.ts) that the gRPC services use: an entry that is an
 * ActionResult is a hit only while every blob it names is in the store.
 */
const CACHE_PREFIX = '/cache/';

export { CACHE_AC_NS };

const MAX_CACHE_PUT_BYTES = 2 * 1024 ** 3;

export interface CacheRouteOptions {
  /** Larger PUT bodies are refused with 413. */
  maxPutBytes?: number;
}

/** Build-cache counters, kept on the mirror's stats object so /_accel/status.json shows them. */
export interface BuildCacheCounters {
  cacheHits: number;
  cacheMisses: number;
  cachePuts: number;
  /** PUTs refused: wrong digest, too large, or broken off mid-body. */
  cacheRejectedPuts: number;
}

const KEY_RE = /^[0-9a-f]{64}$/;

export function isCachePath(raw: string): boolean {
  return raw.startsWith(CACHE_PREFIX);
}

export function buildCacheCounters(stats: MirrorStats): BuildCacheCounters {
  const s = stats as MirrorStats & Partial<BuildCacheCounters>;
  if (s.cacheHits === undefined) Object.assign(s, { cacheHits: 0, cacheMisses: 0, cachePuts: 0, cacheRejectedPuts: 0 });
  return s as MirrorStats & BuildCacheCounters;
}

/** Answers GET, HEAD and PUT under /cache/; the caller has already checked the bearer token. */
export async function handleCacheRequest(
  ctx: MirrorContext,
  req: IncomingMessage,
  res: ServerResponse,
  options: CacheRouteOptions = {},
): Promise<void> {
  const path = (req.url ?? '/').split('?')[0] ?? '';
  const m = /^\/cache\/(ac|cas)\/([^/]*)$/.exec(path);
  if (!m) return sendError(ctx, res, 404, 'no such cache path: use /cache/ac/<64 hex> or /cache/cas/<sha256>');
  const kind = m[1] as 'ac' | 'cas';
  const key = m[2] ?? '';
  if (!KEY_RE.test(key)) return sendError(ctx, res, 400, `not a cache key: '${key.slice(0, 80)}' (64 lowercase hex)`);
  if (req.method === 'PUT') {
    return kind === 'cas'
      ? putBlob(ctx, req, res, key as Digest, options)
      : putActionResult(ctx, req, res, key, options);
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('allow', 'GET, HEAD, PUT');
    return sendError(ctx, res, 405, `method ${req.method} not allowed on the build cache`);
  }
  const digest = kind === 'cas' ? (key as Digest) : new ReapiStorage(ctx.store).actionEntry(key);
  const counters = buildCacheCounters(ctx.stats);
  // An entry whose blob (or a blob its result names) was evicted or quarantined is a miss; the next PUT replaces it.
  if (
    digest &&
    (await serveBlob(req, res, ctx.store, digest, { status: 'HIT', stats: ctx.stats, verified: ctx.verified }))
  ) {
    if (req.method === 'GET') counters.cacheHits++;
    return;
  }
  if (req.method === 'GET') counters.cacheMisses++;
  res
    .writeHead(404, { 'content-type': 'text/plain; charset=utf-8', 'x-accel-cache': 'MISS' })
    .end('not in the cache\n');
}

async function putBlob(
  ctx: MirrorContext,
  req: IncomingMessage,
  res: ServerResponse,
  digest: Digest,
  options: CacheRouteOptions,
) {
  const info = await receive(ctx, req, res, digest, options);
  if (info) stored(ctx, res);
}

async function putActionResult(
  ctx: MirrorContext,
  req: IncomingMessage,
  res: ServerResponse,
  key: string,
  options: CacheRouteOptions,
) {
  const info = await receive(ctx, req, res, undefined, options);
  if (!info) return;
  // The ref is set only after the blob is complete and committed: a reader sees the old entry or the new one.
  new ReapiStorage(ctx.store).setActionEntry(key, info);
  stored(ctx, res);
}

function stored(ctx: MirrorContext, res: ServerResponse): void {
  buildCacheCounters(ctx.stats).cachePuts++;
  res.writeHead(200, { 'content-length': 0 }).end();
}

/**
 * Reads a PUT body into the store. Undefined when it was refused (the response is sent) or the client went
 * away (the connection is dropped); in both cases nothing is stored.
 */
async function receive(
  ctx: MirrorContext,
  req: IncomingMessage,
  res: ServerResponse,
  expected: Digest | undefined,
  options: CacheRouteOptions,
): Promise<BlobInfo | undefined> {
  const limit = options.maxPutBytes ?? MAX_CACHE_PUT_BYTES;
  if (Number(req.headers['content-length'] ?? 0) > limit) return tooLarge(ctx, res, limit);
  const writer = await ctx.store.createWriter();
  let end: BodyEnd;
  try {
    end = await readBody(req, limit, (chunk) => writer.write(chunk));
    if (end === 'complete') return await writer.commit({ expected });
  } catch (err) {
    await writer.abort();
    if (err instanceof AccelError && err.code === 'ACCEL_STORE_DIGEST_MISMATCH') {
      buildCacheCounters(ctx.stats).cacheRejectedPuts++;
      sendError(ctx, res, 400, `body does not match the digest in the path: ${err.message}`);
      return undefined;
    }
    if (err instanceof AccelError && err.code === 'ACCEL_FS_NO_SPACE') {
      // What bazel-remote answers when full; clients take it as a failed upload, not a broken cache.
      sendError(ctx, res, 507, err.message);
      return undefined;
    }
    throw err;
  }
  await writer.abort();
  if (end === 'too-large') return tooLarge(ctx, res, limit);
  buildCacheCounters(ctx.stats).cacheRejectedPuts++;
  res.destroy();
  return undefined;
}

type BodyEnd = 'complete' | 'too-large' | 'broken';

/**
 * Passes a request body to `write` chunk by chunk, the request paused while a write is in flight, and says
 * how the body ended once the last write has settled. A body that stops short (the client left, or the
 * connection broke) is 'broken', never 'complete'.
 */
function readBody(req: IncomingMessage, limit: number, write: (chunk: Buffer) => Promise<void>): Promise<BodyEnd> {
  return new Promise((resolve, reject) => {
    let size = 0;
    let settled = false;
    let writes = Promise.resolve();
    const settle = (end: BodyEnd) => {
      if (settled) return;
      settled = true;
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('close', onClose);
      req.off('error', onClose);
      writes.then(() => resolve(end), reject);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.pause();
        return settle('too-large');
      }
      req.pause();
      writes = writes.then(() => write(chunk));
      writes.then(
        () => {
          if (!settled) req.resume();
        },
        () => settle('broken'),
      );
    };
    const onEnd = () => settle(req.complete ? 'complete' : 'broken');
    const onClose = () => {
      if (!req.complete) settle('broken');
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('close', onClose);
    req.on('error', onClose);
  });
}

function tooLarge(ctx: MirrorContext, res: ServerResponse, limit: number): undefined {
  buildCacheCounters(ctx.stats).cacheRejectedPuts++;
  // Close after answering: the rest of the body is not worth reading.
  res.setHeader('connection', 'close');
  sendError(ctx, res, 413, `body larger than the build cache's limit of ${limit} bytes`);
  return undefined;
}

function sendError(ctx: MirrorContext, res: ServerResponse, status: number, message: string): void {
  ctx.stats.errors++;
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' }).end(`${message}\n`);
}
