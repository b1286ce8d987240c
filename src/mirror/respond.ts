import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { AccelError } from '../core/errors.ts';
import { fingerprintOf } from '../store/cas.ts';
import type { Digest } from '../store/digest.ts';
import type { Store } from '../store/store.ts';
import type { CacheStatus, MirrorStats } from './stats.ts';

export interface ServeOptions {
  status: CacheStatus;
  contentType?: string;
  stats: MirrorStats;
  /**
   * Blobs this process hashed while serving them, with their file's fingerprint then (store/cas.ts
   * fingerprintOf). A range is served without hashing the whole blob only while its fingerprint is the
   * same (a whole response too, when the store's verifyHits is 'changed'): one corrupted or replaced on
   * disk since is hashed again, and quarantined on a mismatch.
   */
  verified: Map<string, string>;
}

/** Blobs up to this size are answered with one read and one write. */
const SMALL_BLOB = 1 << 20;
/** Forget verified digests past this many, so the set stays small in a long-running server. */
const MAX_VERIFIED = 200_000;

/**
 * Answers from a stored blob: 200 with the whole blob (hashed while it streams, the last chunk held back
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
  if (range) return serveRange(req, res, store, digest, headers, range, options);
  if (info.size <= SMALL_BLOB) return serveSmall(req, res, store, digest, headers, options);
  const opened = await store.openFile(digest);
  if (!opened) return false;
  const { fh } = opened;
  const fingerprint = fingerprintOf(await fh.stat());
  res.writeHead(200, { ...headers, 'content-length': opened.info.size });
  if (req.method === 'HEAD') {
    await fh.close();
    res.end();
    return true;
  }
  if (store.verifyHits === 'changed' && options.verified.get(digest) === fingerprint) {
    // Hashed before, unchanged since, and the filesystem checks its own data: straight from the file.
    const source = fh.createReadStream({ highWaterMark: 1 << 20 });
    source.on('data', (chunk) => {
      options.stats.bytesServed += chunk.length;
    });
    await pipeline(source, res).catch(() => res.destroy());
    return true;
  }
  // Hashed as it streams; the last chunk is held back until the hash matched, so a corrupt blob ends in a
  // broken connection (and quarantine), never in a complete 200.
  const hasher = createHash('sha256');
  const buffer = Buffer.allocUnsafe(1 << 20);
  let held: Buffer | undefined;
  let position = 0;
  try {
    for (;;) {
      const { bytesRead } = await fh.read(buffer, 0, buffer.length, position);
      if (bytesRead === 0) break;
      const chunk = Buffer.from(buffer.subarray(0, bytesRead));
      hasher.update(chunk);
      position += bytesRead;
      if (held) await write(res, held, options.stats);
      held = chunk;
    }
    if (hasher.digest('hex') !== digest || position !== opened.info.size) {
      store.quarantine(digest);
      throw new Error('corrupt');
    }
    if (held) await write(res, held, options.stats);
    res.end();
    remember(options.verified, digest, fingerprint);
  } catch {
    // Corrupt on disk (now quarantined) or the client went away: break the connection, never end it cleanly.
    res.destroy();
  } finally {
    await fh.close();
  }
  return true;
}

/**
 * A small blob in one read and one write, hashed before the first byte goes out (unless verifyHits is
 * 'changed' and this process hashed the unchanged file before). A corrupt one is quarantined and reads as
 * a miss, so the caller fetches it again.
 */
async function serveSmall(
  req: IncomingMessage,
  res: ServerResponse,
  store: Store,
  digest: Digest,
  headers: Record<string, string | number>,
  options: ServeOptions,
): Promise<boolean> {
  let read: { data: Buffer; fingerprint: string } | undefined;
  try {
    read = store.readChecked(digest, store.verifyHits === 'changed' ? options.verified.get(digest) : undefined);
  } catch (err) {
    if (err instanceof AccelError && err.code === 'ACCEL_STORE_CORRUPT') return false;
    throw err;
  }
  if (!read) return false;
  const { data } = read;
  remember(options.verified, digest, read.fingerprint);
  res.writeHead(200, { ...headers, 'content-length': data.length });
  if (req.method === 'HEAD') res.end();
  else {
    options.stats.bytesServed += data.length;
    res.end(data);
  }
  return true;
}

function remember(verified: Map<string, string>, digest: Digest, fingerprint: string): void {
  if (verified.size >= MAX_VERIFIED) verified.clear();
  verified.set(digest, fingerprint);
}

/**
 * A range is served only from a blob hashed with its current fingerprint: a blob whose size, inode or times
 * differ from when this process last hashed it (or that it never hashed) is hashed in full first, and a
 * corrupt one is quarantined and reads as a miss.
 */
async function serveRange(
  req: IncomingMessage,
  res: ServerResponse,
  store: Store,
  digest: Digest,
  headers: Record<string, string | number>,
  range: { start: number; end: number },
  options: ServeOptions,
): Promise<boolean> {
  const { stats } = options;
  const opened = await store.openFile(digest);
  if (!opened) return false;
  const { fh, info } = opened;
  const fingerprint = fingerprintOf(await fh.stat());
  if (options.verified.get(digest) !== fingerprint) {
    if (!(await store.verifyOpen(digest, fh))) {
      await fh.close();
      return false;
    }
    remember(options.verified, digest, fingerprint);
  }
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
