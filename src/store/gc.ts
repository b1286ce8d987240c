import { renameSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Statement } from 'better-sqlite3';
import { AccelError, errnoCode } from '../core/errors.ts';
import type { StoreContext } from './context.ts';
import { writeTx } from './db.ts';
import type { Digest } from './digest.ts';
import { dropDeadHolds } from './holds.ts';
import { blobPath } from './layout.ts';
import { type FileLock, takeFileLock } from './lock.ts';
import { makeDir } from './modes.ts';

export interface GcResult {
  budget: number;
  before: { blobs: number; bytes: number };
  after: { blobs: number; bytes: number };
  freed: { blobs: number; bytes: number };
  /** Bytes held by pinned blobs, which gc never evicts. */
  pinnedBytes: number;
  /** True when what gc may not evict (pinned or held blobs) alone exceeds the budget. */
  overBudget: boolean;
}

export interface StoreTotals {
  blobs: number;
  bytes: number;
  pinnedBytes: number;
}

/** The store's size from the row the index's triggers keep: one read, however many blobs there are. */
export function readTotals(ctx: StoreContext): StoreTotals {
  let statement = totalsStatements.get(ctx.db);
  if (!statement) {
    statement = ctx.db.prepare('SELECT blobs, bytes, pinned_bytes AS pinnedBytes FROM store_totals WHERE id = 1');
    totalsStatements.set(ctx.db, statement);
  }
  return (statement.get() as StoreTotals | undefined) ?? { blobs: 0, bytes: 0, pinnedBytes: 0 };
}

/** Prepared once per connection: every new blob of a size-limited store reads the totals. */
const totalsStatements = new WeakMap<object, Statement>();

interface Candidate {
  digest: Digest;
  size: number;
  last_access: number;
}

/**
 * One step of eviction, shared by `accel store gc` and the size limit of a running server. The caller holds the
 * gc lock. Rows go first, in a short write transaction that also journals them in `evicting` (a reader either
 * finds a blob or misses it, and a writer waits milliseconds, never a whole gc); files are unlinked after, and
 * leave the journal once gone. A process killed in between leaves journal rows that the next gc finishes, so the
 * files never outgrow the index for long. A reader that already has a blob open keeps reading it to the end:
 * unlink removes the name, not the open file.
 */
export class Evictor {
  readonly #ctx: StoreContext;
  readonly #select;
  readonly #drop;
  readonly #dropRefs;
  readonly #journal;
  readonly #unjournal;
  readonly #journaled;
  readonly #stillGone;

  constructor(ctx: StoreContext) {
    this.#ctx = ctx;
    const { db } = ctx;
    // (pinned, last_access) is the index's order (digest, the key, follows in a WITHOUT ROWID index): no sort.
    this.#select = db.prepare(
      `SELECT digest, size, last_access FROM blobs INDEXED BY blobs_lru
       WHERE pinned = 0 AND NOT EXISTS (SELECT 1 FROM holds WHERE holds.digest = blobs.digest)
       ORDER BY pinned, last_access LIMIT ?`,
    );
    // Evicted only as seen: a blob read, pinned or held since it was chosen stays.
    this.#drop = db.prepare(
      `DELETE FROM blobs WHERE digest = ? AND last_access = ? AND pinned = 0
       AND NOT EXISTS (SELECT 1 FROM holds WHERE holds.digest = blobs.digest)`,
    );
    this.#dropRefs = db.prepare('DELETE FROM refs WHERE digest = ?');
    this.#journal = db.prepare('INSERT OR IGNORE INTO evicting (digest) VALUES (?)');
    this.#unjournal = db.prepare('DELETE FROM evicting WHERE digest = ?');
    this.#journaled = db.prepare('SELECT digest FROM evicting').pluck();
    this.#stillGone = db.prepare(
      'SELECT e.digest FROM evicting e WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.digest = e.digest)',
    );
  }

  /** How many blobs freeing `bytes` takes, in eviction order (for a progress bar: one pass over the candidates). */
  countToFree(bytes: number): number {
    if (bytes <= 0) return 0;
    return this.#ctx.db
      .prepare(
        `SELECT count(*) FROM (
           SELECT size, sum(size) OVER (ORDER BY last_access ROWS UNBOUNDED PRECEDING) AS upto
           FROM blobs INDEXED BY blobs_lru
           WHERE pinned = 0 AND NOT EXISTS (SELECT 1 FROM holds WHERE holds.digest = blobs.digest))
         WHERE upto - size < ?`,
      )
      .pluck()
      .get(bytes) as number;
  }

  /** Removes the rows of up to `count` least recently used evictable blobs, stopping once `bytes` are freed. */
  evictRows(bytes: number, count: number): Candidate[] {
    const candidates = this.#select.all(count) as Candidate[];
    if (candidates.length === 0) return [];
    return writeTx(this.#ctx.db, () => {
      const evicted: Candidate[] = [];
      let freed = 0;
      for (const c of candidates) {
        if (freed >= bytes) break;
        if (this.#drop.run(c.digest, c.last_access).changes === 0) continue;
        this.#dropRefs.run(c.digest);
        this.#journal.run(c.digest);
        evicted.push(c);
        freed += c.size;
      }
      return evicted;
    });
  }

  /** Unlinks the files of journaled blobs whose rows are gone (a put of the same bytes since then keeps its file). */
  unlinkJournaled(digests?: readonly Digest[]): number {
    const gone = new Set((this.#stillGone.all() as { digest: Digest }[]).map((r) => r.digest));
    // Without a list: the whole journal (a blob put again since its eviction leaves the journal with its file).
    const wanted = digests ?? (this.#journaled.all() as Digest[]);
    let unlinked = 0;
    const done: Digest[] = [];
    for (const digest of wanted) {
      if (gone.has(digest)) {
        rmSync(blobPath(this.#ctx.layout, digest), { force: true });
        unlinked++;
      }
      done.push(digest);
    }
    if (done.length > 0) {
      writeTx(this.#ctx.db, () => {
        for (const digest of done) this.#unjournal.run(digest);
      });
    }
    return unlinked;
  }

  /**
   * The same off the main thread (a server's background gc): unlinking takes the disk's time, not the CPU's, and
   * requests are served meanwhile. The journal keeps the rows until the files are gone.
   */
  async unlinkEvicted(digests: readonly Digest[]): Promise<void> {
    // One at a time: the thread pool also opens and reads the blobs that requests are served from, and 128
    // unlinks in parallel would queue those behind them.
    for (const digest of digests) {
      if (this.#ctx.statements.get.get(digest) !== undefined) continue;
      // The name goes at once, in the same tick as the check: a put of the same bytes (a synchronous link and
      // row, cas-write's commit) lands either before it, and keeps its file, or after it, on a fresh name. An
      // unlink on the thread pool would instead remove a file a put linked while it waited (a row, no file).
      const aside = join(this.#ctx.layout.tmp, `evicted-${digest}-${process.pid}`);
      try {
        renameSync(blobPath(this.#ctx.layout, digest), aside);
      } catch (err) {
        if (errnoCode(err) === 'ENOENT') continue;
        throw err;
      }
      await rm(aside, { force: true });
    }
    writeTx(this.#ctx.db, () => {
      for (const digest of digests) this.#unjournal.run(digest);
    });
  }

  /** Work a gc killed part-way left: files of evicted rows, holds of processes that are gone. */
  recover(): void {
    this.unlinkJournaled();
    dropDeadHolds(this.#ctx);
  }
}

/** Takes the store's gc lock: at most one process collects garbage at a time. */
export function takeGcLock(ctx: StoreContext, waitMs: number): FileLock | undefined {
  makeDir(ctx.layout.run, 0o700);
  return takeFileLock(ctx.layout.gcLock, ctx.layout.home, waitMs);
}

/** Finishes what a gc killed part-way left (store/verify and a server's start), unless a gc is running now. */
export function finishEvictions(ctx: StoreContext): void {
  const pending = ctx.db.prepare('SELECT count(*) FROM evicting').pluck().get() as number;
  if (pending === 0) return;
  const lock = takeGcLock(ctx, 5_000);
  if (!lock) return;
  try {
    new Evictor(ctx).recover();
  } finally {
    lock.release();
  }
}

const BATCH = 256;

/**
 * Evicts least-recently-used blobs that are neither pinned nor held until the store fits `budget` bytes
 * (`accel store gc`). Waits up to 30 s for a running server's gc to finish first.
 */
export function collectGarbage(
  ctx: StoreContext,
  budget: number,
  onProgress?: (done: number, total: number) => void,
): GcResult {
  const lock = takeGcLock(ctx, 30_000);
  if (!lock) {
    throw new AccelError('ACCEL_STORE_GC_BUSY', 'another process has been collecting garbage in this store for 30 s', {
      hint: 'try again when it is done; a running mirror, syncer, worker or cc daemon keeps store.maxSize by itself',
    });
  }
  try {
    const evictor = new Evictor(ctx);
    evictor.recover();
    const before = readTotals(ctx);
    let bytes = before.bytes;
    let freedBlobs = 0;
    let freedBytes = 0;
    const total = evictor.countToFree(before.bytes - budget);
    while (bytes > budget) {
      const evicted = evictor.evictRows(bytes - budget, BATCH);
      if (evicted.length === 0) break;
      evictor.unlinkJournaled(evicted.map((c) => c.digest));
      for (const c of evicted) {
        freedBlobs++;
        freedBytes += c.size;
      }
      bytes = readTotals(ctx).bytes;
      onProgress?.(Math.min(freedBlobs, total), total);
    }
    const after = readTotals(ctx);
    return {
      budget,
      before: { blobs: before.blobs, bytes: before.bytes },
      after: { blobs: after.blobs, bytes: after.bytes },
      freed: { blobs: freedBlobs, bytes: freedBytes },
      pinnedBytes: after.pinnedBytes,
      overBudget: after.bytes > budget,
    };
  } finally {
    lock.release();
  }
}
