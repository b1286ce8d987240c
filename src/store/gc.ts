import { rmSync } from 'node:fs';
import type { StoreContext } from './context.ts';
import { writeTx } from './db.ts';
import type { Digest } from './digest.ts';
import { blobPath } from './layout.ts';

export interface GcResult {
  budget: number;
  before: { blobs: number; bytes: number };
  after: { blobs: number; bytes: number };
  freed: { blobs: number; bytes: number };
  /** Bytes held by pinned blobs, which gc never evicts. */
  pinnedBytes: number;
  /** True when pinned blobs alone exceed the budget, so the budget could not be reached. */
  overBudget: boolean;
}

/**
 * Evicts least-recently-used unpinned blobs until the store fits `budget` bytes. Rows go first, in one write
 * transaction (a reader either finds a blob or misses it); files are unlinked afterwards. A reader that
 * already has a blob open keeps reading it to the end: unlink removes the name, not the open file.
 */
export function collectGarbage(
  ctx: StoreContext,
  budget: number,
  onProgress?: (done: number, total: number) => void,
): GcResult {
  const { db } = ctx;
  const totals = db.prepare('SELECT count(*) AS blobs, coalesce(sum(size), 0) AS bytes FROM blobs');
  const pinned = db.prepare('SELECT coalesce(sum(size), 0) AS bytes FROM blobs WHERE pinned = 1');
  const candidates = db.prepare('SELECT digest, size FROM blobs WHERE pinned = 0 ORDER BY last_access, digest');
  const dropBlob = db.prepare('DELETE FROM blobs WHERE digest = ?');
  const dropRefs = db.prepare('DELETE FROM refs WHERE digest = ?');

  const evicted: Digest[] = [];
  const result = writeTx(db, () => {
    const before = totals.get() as { blobs: number; bytes: number };
    const pinnedBytes = (pinned.get() as { bytes: number }).bytes;
    let bytes = before.bytes;
    let freedBytes = 0;
    if (bytes > budget) {
      for (const row of candidates.iterate() as Iterable<{ digest: Digest; size: number }>) {
        if (bytes <= budget) break;
        evicted.push(row.digest);
        bytes -= row.size;
        freedBytes += row.size;
      }
      for (const digest of evicted) {
        dropBlob.run(digest);
        dropRefs.run(digest);
      }
    }
    return {
      budget,
      before,
      after: { blobs: before.blobs - evicted.length, bytes },
      freed: { blobs: evicted.length, bytes: freedBytes },
      pinnedBytes,
      overBudget: bytes > budget,
    };
  });
  evicted.forEach((digest, i) => {
    rmSync(blobPath(ctx.layout, digest), { force: true });
    onProgress?.(i + 1, evicted.length);
  });
  return result;
}
