import { createReadStream, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as delay } from 'node:timers/promises';
import { errnoCode } from '../core/errors.ts';
import { type BlobRow, quarantineBlob } from './cas.ts';
import type { StoreContext } from './context.ts';
import { type Digest, isDigest, newHasher } from './digest.ts';
import { finishEvictions } from './gc.ts';
import { blobPath } from './layout.ts';

export interface VerifyResult {
  checked: number;
  bytes: number;
  /** Blobs whose content did not match their name, with where they were moved. */
  corrupt: { digest: Digest; quarantinedTo: string }[];
  /** Index rows whose file was gone; the rows were dropped. */
  missing: Digest[];
  /** Complete blob files without an index row (a put interrupted between rename and insert); now indexed. */
  adopted: Digest[];
}

export interface VerifyOptions {
  /** After each blob: how many are done, of how many, and the bytes of this one. */
  onProgress?: (done: number, total: number, bytes: number) => void;
  /** Reads at most this many bytes per second (a scrub beside running builds); unlimited when absent. */
  bytesPerSecond?: number;
}

/** Rehashes every blob, quarantines the ones that do not match their digest, and reconciles files with rows. */
export async function verifyStore(ctx: StoreContext, options: VerifyOptions = {}): Promise<VerifyResult> {
  // An eviction a crash cut short is finished first: its files are evicted blobs, not blobs to adopt.
  finishEvictions(ctx);
  const rows = ctx.db.prepare('SELECT digest, size FROM blobs ORDER BY digest').all() as Pick<
    BlobRow,
    'digest' | 'size'
  >[];
  const result: VerifyResult = { checked: 0, bytes: 0, corrupt: [], missing: [], adopted: [] };
  const pace = throttle(options.bytesPerSecond);
  const indexed = new Set<string>();
  for (const row of rows) {
    const digest = row.digest as Digest;
    indexed.add(digest);
    const actual = await hashFile(blobPath(ctx.layout, digest), pace);
    result.checked++;
    options.onProgress?.(result.checked, rows.length, actual?.size ?? 0);
    if (actual === undefined) {
      ctx.statements.delete.run(digest);
      result.missing.push(digest);
    } else if (actual.digest !== digest || actual.size !== row.size) {
      result.corrupt.push({ digest, quarantinedTo: quarantineBlob(ctx, digest) });
    } else {
      result.bytes += actual.size;
    }
  }
  for (const { digest, path } of blobFiles(ctx.layout.blobs)) {
    if (indexed.has(digest)) continue;
    const actual = await hashFile(path, pace);
    if (actual === undefined) continue;
    result.checked++;
    if (actual.digest === digest && path === blobPath(ctx.layout, digest)) {
      ctx.statements.upsert.run({ digest, size: actual.size, now: ctx.now(), pinned: 0 });
      result.adopted.push(digest);
      result.bytes += actual.size;
    } else {
      result.corrupt.push({ digest, quarantinedTo: quarantineBlob(ctx, digest, path) });
    }
  }
  return result;
}

function* blobFiles(root: string): Generator<{ digest: Digest; path: string }> {
  for (const shard of readdirSync(root)) {
    for (const name of readdirSync(join(root, shard))) {
      if (isDigest(name)) yield { digest: name, path: join(root, shard, name) };
    }
  }
}

/**
 * Waits after each chunk until the bytes read so far fit the rate, measured from the first read: a pause
 * (the process stopped, a slow disk) is not made up for by a burst beyond it.
 */
function throttle(bytesPerSecond: number | undefined): (bytes: number) => Promise<void> {
  if (!bytesPerSecond) return async () => {};
  let start = 0;
  let total = 0;
  return async (bytes) => {
    const now = performance.now();
    if (start === 0) start = now;
    total += bytes;
    const due = start + (total / bytesPerSecond) * 1000;
    if (due > now) await delay(due - now);
    else if (now - due > 1000) {
      start = now;
      total = 0;
    }
  };
}

async function hashFile(
  path: string,
  pace: (bytes: number) => Promise<void>,
): Promise<{ digest: string; size: number } | undefined> {
  const hasher = newHasher();
  let size = 0;
  try {
    for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
      hasher.update(chunk as Buffer);
      size += (chunk as Buffer).length;
      await pace((chunk as Buffer).length);
    }
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
  return { digest: hasher.digest('hex'), size };
}
