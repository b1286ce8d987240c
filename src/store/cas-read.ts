import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { Transform, type TransformCallback } from 'node:stream';
import { errnoCode, fsError } from '../core/errors.ts';
import {
  type BlobInfo,
  type BlobReader,
  type BlobRow,
  fingerprintOf,
  forget,
  HASH_BUFFER_SIZE,
  mismatch,
  toInfo,
} from './cas.ts';
import type { StoreContext } from './context.ts';
import { type Digest, digestOf, newHasher } from './digest.ts';
import { blobPath } from './layout.ts';

/** Access times are written at most this often per blob, so hot reads stay read-only transactions. */
const TOUCH_GRANULARITY_MS = 60_000;

/**
 * Opens a blob for reading, or undefined when the store does not have it (no row, or the file is gone: a
 * ref to a missing blob is a miss, never an error). The stream hashes what it reads and fails at the end on a
 * mismatch, after quarantining the blob, so a caller that waits for the end never accepts wrong bytes.
 */
export async function openBlob(ctx: StoreContext, digest: Digest): Promise<BlobReader | undefined> {
  const opened = await openForRead(ctx, digest);
  if (!opened) return undefined;
  const { row, fh } = opened;
  const hasher = newHasher();
  let seen = 0;
  const check = new Transform({
    transform(chunk: Buffer, _enc, done: TransformCallback) {
      hasher.update(chunk);
      seen += chunk.length;
      done(null, chunk);
    },
    flush(done: TransformCallback) {
      done(mismatch(ctx, row, hasher.digest('hex'), seen));
    },
  });
  const raw = fh.createReadStream({ highWaterMark: 1 << 20 });
  raw.on('error', (err) => check.destroy(err));
  return { info: toInfo(row), stream: raw.pipe(check) };
}

/**
 * Passes the blob to `sink` chunk by chunk through one reused buffer: a chunk is valid only until the sink's
 * promise settles. Memory stays flat for any size. Rejects with ACCEL_STORE_CORRUPT after the last chunk
 * if the bytes do not hash to `digest` (and quarantines the blob). Undefined on a miss.
 */
export async function copyBlob(
  ctx: StoreContext,
  digest: Digest,
  sink: (chunk: Buffer) => Promise<void> | void,
): Promise<BlobInfo | undefined> {
  const opened = await openForRead(ctx, digest);
  if (!opened) return undefined;
  const { row, fh } = opened;
  const hasher = newHasher();
  const buffer = Buffer.allocUnsafe(Math.min(HASH_BUFFER_SIZE, Math.max(row.size, 1)));
  let seen = 0;
  try {
    for (;;) {
      const { bytesRead } = await fh.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      const chunk = buffer.subarray(0, bytesRead);
      hasher.update(chunk);
      seen += bytesRead;
      await sink(chunk);
    }
  } finally {
    await fh.close();
  }
  const error = mismatch(ctx, row, hasher.digest('hex'), seen);
  if (error) throw error;
  return toInfo(row);
}

/**
 * Opens a blob's file without verifying it, for servers that serve ranges or verify as they stream. The
 * caller owns the handle. Undefined on a miss.
 */
export async function openBlobFile(
  ctx: StoreContext,
  digest: Digest,
): Promise<{ info: BlobInfo; fh: FileHandle } | undefined> {
  const opened = await openForRead(ctx, digest);
  return opened && { info: toInfo(opened.row), fh: opened.fh };
}

/** Looks a blob up and opens its file; a row whose file is gone is dropped and reads as a miss. */
async function openForRead(ctx: StoreContext, digest: Digest): Promise<{ row: BlobRow; fh: FileHandle } | undefined> {
  const row = ctx.statements.get.get(digest) as BlobRow | undefined;
  if (!row) return undefined;
  const path = blobPath(ctx.layout, digest);
  try {
    const fh = await open(path, 'r');
    touch(ctx, row);
    return { row, fh };
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw fsError(err, 'reading', path);
    forget(ctx, digest);
    return undefined;
  }
}

/**
 * Reads a whole blob with its file's fingerprint, hashing it unless the fingerprint is `trusted` (one the
 * caller saw when it last hashed it). A mismatch quarantines the blob and throws ACCEL_STORE_CORRUPT.
 */
export function readBlobChecked(
  ctx: StoreContext,
  digest: Digest,
  trusted: string | undefined,
): { data: Buffer; fingerprint: string } | undefined {
  const row = ctx.statements.get.get(digest) as BlobRow | undefined;
  if (!row) return undefined;
  const path = blobPath(ctx.layout, digest);
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw fsError(err, 'reading', path);
    forget(ctx, digest);
    return undefined;
  }
  let data: Buffer;
  let fingerprint: string;
  try {
    fingerprint = fingerprintOf(fstatSync(fd));
    data = readFileSync(fd);
  } finally {
    closeSync(fd);
  }
  touch(ctx, row);
  if (fingerprint !== trusted) {
    const error = mismatch(ctx, row, digestOf(data), data.length);
    if (error) throw error;
  }
  return { data, fingerprint };
}

/** Hashes an open blob file in full (positional reads); on a mismatch quarantines it and returns false. */
export async function verifyOpenBlob(ctx: StoreContext, digest: Digest, fh: FileHandle): Promise<boolean> {
  const row = ctx.statements.get.get(digest) as BlobRow | undefined;
  if (!row) return false;
  const hasher = newHasher();
  const buffer = Buffer.allocUnsafe(HASH_BUFFER_SIZE);
  let seen = 0;
  for (;;) {
    const { bytesRead } = await fh.read(buffer, 0, buffer.length, seen);
    if (bytesRead === 0) break;
    hasher.update(buffer.subarray(0, bytesRead));
    seen += bytesRead;
  }
  return mismatch(ctx, row, hasher.digest('hex'), seen) === undefined;
}

/** Reads a whole blob into memory and checks it before returning; for small blobs (compile outputs, manifests). */
export function readBlob(ctx: StoreContext, digest: Digest, options: { verify?: boolean } = {}): Buffer | undefined {
  const row = ctx.statements.get.get(digest) as BlobRow | undefined;
  if (!row) return undefined;
  const path = blobPath(ctx.layout, digest);
  let data: Buffer;
  try {
    // Synchronous on purpose: for small blobs one readFile beats three thread-pool round trips.
    data = readFileSync(path);
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw fsError(err, 'reading', path);
    forget(ctx, digest);
    return undefined;
  }
  touch(ctx, row);
  if (options.verify === false) return data;
  const error = mismatch(ctx, row, digestOf(data), data.length);
  if (error) throw error;
  return data;
}

/**
 * Records a read for LRU eviction. Best effort: on a full disk the index cannot take the write, and a read
 * must not fail for it (hits keep being served while the disk is full).
 */
function touch(ctx: StoreContext, row: BlobRow): void {
  try {
    touchRow(ctx, row);
  } catch (err) {
    if (!/^SQLITE_(FULL|IOERR|READONLY|BUSY)/.test(errnoCode(err) ?? '')) throw err;
  }
}

function touchRow(ctx: StoreContext, row: BlobRow): void {
  const now = ctx.now();
  if (now - row.last_access < TOUCH_GRANULARITY_MS) return;
  ctx.statements.touch.run(now, row.digest);
}
