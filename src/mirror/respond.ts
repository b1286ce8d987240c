import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { AccelError } from '../core/errors.ts';
import type { Digest } from '../store/digest.ts';
import type { Store } from '../store/store.ts';
import type { CacheStatus, MirrorStats } from './stats.ts';

export interface ServeOptions {
  status: CacheStatus;
  contentType?: string;
  stats: MirrorStats;
  /** Blobs this process already hashed once while serving them; they are not hashed again. */
  verified: Set<string>;
}

/** Blobs up to this size are answered with one read and one write. */
const SMALL_BLOB = 1 << 20;
/** Forget verified digests past this many, so the set stays small in a long-running server. */
const MAX_VERIFIED = 200_000;

/**
 * Answers from a stored blob: 200 with the whole blob (verified while it streams, the last chunk held back
 * until the hash matched), or 206 for a single byte range. False when the store no longer has the blob.
 */
export async function serveBlob(
  req: IncomingMessage,
  res: ServerResponse,
  store: Store,
  digest: Digest,
  options: ServeOptions,
): Promise<boolean> {
  const info = store.stat(digest);
  if (!info) return false;
  const headers: Record<string, string | number> = {
    'content-type': options.contentType ?? 'application/octet-stream',
    'accept-ranges': 'bytes',
    etag: `"${digest}"`,
    'x-accel-cache': options.status,
    'x-accel-digest': `sha256:${digest}`,
  };
  const range = parseRange(req.headers.range, info.size);
  if (range === 'unsatisfiable') {
    res.writeHead(416, { ...headers, 'content-range': `bytes */${info.size}` }).end();
    return true;
  }
  if (range) return serveRange(req, res, store, digest, headers, range, options.stats);
  if (info.size <= SMALL_BLOB) return serveSmall(req, res, store, digest, headers, options);
  if (options.verified.has(digest)) return serveTrusted(req, res, store, digest, headers, options.stats);
  const reader = await store.open(digest);
  if (!reader) return false;
  res.writeHead(200, { ...headers, 'content-length': info.size });
  if (req.method === 'HEAD') {
    reader.stream.destroy();
    res.end();
    return true;
  }
  let held: Buffer | undefined;
  try {
    for await (const chunk of reader.stream) {
      if (held) await write(res, held, options.stats);
      held = chunk as Buffer;
    }
    if (held) await write(res, held, options.stats);
    res.end();
    remember(options.verified, digest);
  } catch {
    // Corrupt on disk (now quarantined) or the client went away: break the connection, never end it cleanly.
    reader.stream.destroy();
    res.destroy();
  }
  return true;
}

/**
 * A small blob in one read and one write. It is hashed the first time this process serves it (a corrupt
 * one is quarantined and reads as a miss, so the caller fetches it again); after that, trusted.
 */
async function serveSmall(
  req: IncomingMessage,
  res: ServerResponse,
  store: Store,
  digest: Digest,
  headers: Record<string, string | number>,
  options: ServeOptions,
): Promise<boolean> {
  let data: Buffer | undefined;
  try {
    data = store.read(digest, { verify: !options.verified.has(digest) });
  } catch (err) {
    if (err instanceof AccelError && err.code === 'ACCEL_STORE_CORRUPT') return false;
    throw err;
  }
  if (!data) return false;
  remember(options.verified, digest);
  res.writeHead(200, { ...headers, 'content-length': data.length });
  if (req.method === 'HEAD') res.end();
  else {
    options.stats.bytesServed += data.length;
    res.end(data);
  }
  return true;
}

/** A large blob this process has verified before: streamed straight from its file. */
async function serveTrusted(
  req: IncomingMessage,
  res: ServerResponse,
  store: Store,
  digest: Digest,
  headers: Record<string, string | number>,
  stats: MirrorStats,
): Promise<boolean> {
  const opened = await store.openFile(digest);
  if (!opened) return false;
  res.writeHead(200, { ...headers, 'content-length': opened.info.size });
  if (req.method === 'HEAD') {
    await opened.fh.close();
    res.end();
    return true;
  }
  const source = opened.fh.createReadStream({ highWaterMark: 1 << 20 });
  source.on('data', (chunk) => {
    stats.bytesServed += chunk.length;
  });
  await pipeline(source, res).catch(() => res.destroy());
  return true;
}

function remember(verified: Set<string>, digest: Digest): void {
  if (verified.size >= MAX_VERIFIED) verified.clear();
  verified.add(digest);
}

async function serveRange(
  req: IncomingMessage,
  res: ServerResponse,
  store: Store,
  digest: Digest,
  headers: Record<string, string | number>,
  range: { start: number; end: number },
  stats: MirrorStats,
): Promise<boolean> {
  const opened = await store.openFile(digest);
  if (!opened) return false;
  const { fh, info } = opened;
  try {
    const length = range.end - range.start + 1;
    res.writeHead(206, {
      ...headers,
      'content-length': length,
      'content-range': `bytes ${range.start}-${range.end}/${info.size}`,
    });
    if (req.method === 'HEAD') return true;
    let position = range.start;
    while (position <= range.end) {
      const buffer = Buffer.allocUnsafe(Math.min(1 << 20, range.end - position + 1));
      const { bytesRead } = await fh.read(buffer, 0, buffer.length, position);
      if (bytesRead === 0) throw new Error('blob shorter than its index entry');
      await write(res, buffer.subarray(0, bytesRead), stats);
      position += bytesRead;
    }
    return true;
  } catch {
    res.destroy();
    return true;
  } finally {
    await fh.close();
    if (!res.destroyed) res.end();
  }
}

/** One `bytes=a-b`, `bytes=a-` or `bytes=-n` range; anything else (several ranges, other units) is ignored. */
export function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | 'unsatisfiable' | undefined {
  if (!header) return undefined;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  let start: number;
  let end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return 'unsatisfiable';
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start >= size || start > end) return 'unsatisfiable';
  return { start, end };
}

export function write(res: ServerResponse, chunk: Buffer, stats: MirrorStats): Promise<void> {
  stats.bytesServed += chunk.length;
  return new Promise((resolve, reject) => {
    if (res.write(chunk)) resolve();
    else {
      const onDrain = () => {
        res.off('close', onClose);
        resolve();
      };
      const onClose = () => {
        res.off('drain', onDrain);
        reject(new Error('client went away'));
      };
      res.once('drain', onDrain);
      res.once('close', onClose);
    }
  });
}
