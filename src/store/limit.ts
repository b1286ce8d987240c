import { formatSize } from '../core/size.ts';
import type { StoreContext } from './context.ts';
import { Evictor, finishEvictions, readTotals, takeGcLock } from './gc.ts';
import { heldBytes } from './holds.ts';
import type { FileLock } from './lock.ts';

export interface SizeLimitOptions {
  /** The limit: the store never holds more than this plus the blob being written. */
  maxBytes: number;
  /** Past this fraction of the limit a background gc starts (default 0.95). */
  highWater?: number;
  /** ... and evicts down to this fraction (default 0.85). */
  lowWater?: number;
  /** How often the size is looked at when nothing was written here (another process may have), in ms. */
  checkEveryMs?: number;
}

export interface SizeLimitStatus {
  maxBytes: number;
  highBytes: number;
  lowBytes: number;
  bytes: number;
  blobs: number;
  pinnedBytes: number;
  /** gc passes this process ran, blobs and bytes it evicted, and the main thread's CPU time they took. */
  gcRuns: number;
  evictedBlobs: number;
  evictedBytes: number;
  gcCpuSeconds: number;
  /** True while the store is over its limit by what gc may not evict (pinned or held blobs). */
  overByKept: boolean;
}

/** Blobs evicted per write transaction: short enough that another process's write waits milliseconds. */
const BATCH = 128;

/**
 * Keeps a store under its size while a server writes to it, like bazel-remote's --max_size or ccache's automatic
 * cleanup. Every new blob is admitted against the limit (one read of the totals row): past the high-water mark a
 * background gc evicts least recently used blobs, neither pinned nor held, down to the low-water mark, in short
 * batches that yield to requests between them; a write that would cross the limit itself first evicts just
 * enough, inline. Only the holder of the store's gc lock evicts, so several processes on one store never gc at
 * once; a process that finds the lock taken leaves the work to its holder.
 */
export class SizeLimit {
  readonly #ctx: StoreContext;
  readonly #evictor: Evictor;
  readonly #max: number;
  readonly #high: number;
  readonly #low: number;
  readonly #timer: NodeJS.Timeout;
  #lock: FileLock | undefined;
  #running: Promise<void> | undefined;
  #closed = false;
  #warned = false;
  #again = false;
  /** Bytes of evicted blobs whose files are being unlinked in the background. */
  #unlinking = 0;
  readonly #stats = { gcRuns: 0, evictedBlobs: 0, evictedBytes: 0, gcCpuMicros: 0 };

  /** Admits the store's new blobs from now on (the store calls `admit` and `written`) until `close()`. */
  constructor(ctx: StoreContext, options: SizeLimitOptions) {
    this.#ctx = ctx;
    ctx.limit = this;
    this.#evictor = new Evictor(ctx);
    this.#max = options.maxBytes;
    this.#high = Math.floor(options.maxBytes * (options.highWater ?? 0.95));
    this.#low = Math.floor(options.maxBytes * (options.lowWater ?? 0.85));
    this.#timer = setInterval(() => this.written(), options.checkEveryMs ?? 5_000).unref();
    finishEvictions(ctx);
    // A store that is already over (a lower limit than last time, another process's writes) shrinks now.
    this.written();
  }

  /**
   * Called before a new blob of `size` bytes becomes visible: when it would take the store past the limit,
   * evicts enough first (synchronously: the limit holds whatever the request rate).
   */
  admit(size: number): void {
    const bytes = readTotals(this.#ctx).bytes + this.#unlinking;
    if (bytes + size <= this.#max) return;
    const lock = this.#lock ?? takeGcLock(this.#ctx, 0);
    if (!lock) return;
    try {
      // However small the blobs gc finds, enough of them go for this one to fit (or all that may go).
      for (let need = bytes + size - this.#max; need > 0; ) {
        const freed = this.#evict(need);
        if (freed === 0) break;
        need -= freed;
      }
    } finally {
      if (lock !== this.#lock) lock.release();
    }
  }

  /** Called after a write (and on a timer): starts a background gc past the high-water mark. */
  written(): void {
    if (this.#closed) return;
    if (this.#running) {
      // The pass in progress may be past its last look at the size: it looks again when it ends.
      this.#again = true;
      return;
    }
    if (readTotals(this.#ctx).bytes <= this.#high) {
      this.#warned = false;
      return;
    }
    this.#again = false;
    this.#running = this.#pass()
      .catch((err: Error) => {
        // A closed store (the process is stopping) leaves its journal to the next start; anything else is said.
        if (!this.#closed) this.#ctx.log.warn(`store gc: ${err.message}`);
      })
      .finally(() => {
        this.#running = undefined;
        if (this.#again) this.written();
      });
  }

  status(): SizeLimitStatus {
    const totals = readTotals(this.#ctx);
    return {
      maxBytes: this.#max,
      highBytes: this.#high,
      lowBytes: this.#low,
      ...totals,
      gcRuns: this.#stats.gcRuns,
      evictedBlobs: this.#stats.evictedBlobs,
      evictedBytes: this.#stats.evictedBytes,
      gcCpuSeconds: this.#stats.gcCpuMicros / 1e6,
      overByKept: totals.bytes > this.#max && this.#warned,
    };
  }

  /** Stops watching; a gc pass in progress ends after its current batch. */
  async close(): Promise<void> {
    this.stop();
    await this.#running;
  }

  /** Stops at once (the store is closing): no batch starts after this. */
  stop(): void {
    this.#closed = true;
    if (this.#ctx.limit === this) this.#ctx.limit = undefined;
    clearInterval(this.#timer);
  }

  async #pass(): Promise<void> {
    const lock = takeGcLock(this.#ctx, 0);
    if (!lock) return;
    this.#lock = lock;
    try {
      this.#stats.gcRuns++;
      this.#timed(() => this.#evictor.recover());
      while (!this.#closed) {
        const over = readTotals(this.#ctx).bytes - this.#low;
        if (over <= 0) break;
        const evicted = this.#timed(() => this.#evictor.evictRows(over, BATCH));
        if (evicted.length === 0) break;
        const freed = evicted.reduce((n, c) => n + c.size, 0);
        // The files go off the main thread while requests are served; until then they still take disk space,
        // which admit() counts, so the disk never holds more than the limit plus the blob being written.
        this.#unlinking += freed;
        try {
          await this.#evictor.unlinkEvicted(evicted.map((c) => c.digest));
        } finally {
          this.#unlinking -= freed;
        }
        this.#stats.evictedBlobs += evicted.length;
        this.#stats.evictedBytes += freed;
      }
    } finally {
      this.#lock = undefined;
      lock.release();
    }
    if (!this.#closed) this.#warnIfKept();
  }

  /** One batch: up to BATCH blobs, stopping at `bytes`. Returns the bytes freed. */
  #evict(bytes: number): number {
    return this.#timed(() => {
      const evicted = this.#evictor.evictRows(bytes, BATCH);
      if (evicted.length === 0) return 0;
      this.#evictor.unlinkJournaled(evicted.map((c) => c.digest));
      const freed = evicted.reduce((n, c) => n + c.size, 0);
      this.#stats.evictedBlobs += evicted.length;
      this.#stats.evictedBytes += freed;
      return freed;
    });
  }

  #timed<T>(fn: () => T): T {
    const before = process.threadCpuUsage();
    try {
      return fn();
    } finally {
      const used = process.threadCpuUsage(before);
      this.#stats.gcCpuMicros += used.user + used.system;
    }
  }

  /** Says once (until the store is under its limit again) that what is left is pinned or held. */
  #warnIfKept(): void {
    const totals = readTotals(this.#ctx);
    if (totals.bytes <= this.#max || this.#warned) return;
    this.#warned = true;
    const held = heldBytes(this.#ctx);
    this.#ctx.log.warn(
      `store is over its limit ${formatSize(this.#max)} (${formatSize(totals.bytes)}) by what gc may not evict: ` +
        `${formatSize(totals.pinnedBytes)} pinned, ${formatSize(held)} held (apt epochs, jobs in flight); ` +
        'raise store.maxSize or unpin blobs (accel store unpin)',
    );
  }
}
