import type { SizeLimitStatus } from '../store/limit.ts';
import type { Store } from '../store/store.ts';
import type { WorkerReport } from './protocol.ts';
import type { JobQueue } from './queue.ts';
import type { IncludeTree } from './tree.ts';

/** The syncer's state as its /status answers it (JSON), its status page shows it and `accel farm status` prints it. */
export interface FarmStatus {
  syncer: {
    url: string;
    manifest: string;
    files: number;
    publishes: number;
    roots: string[];
    /** What its REAPI actions may run (farm.reapiRun); absent without REAPI. */
    reapiRun?: string;
  };
  queue: { queued: number; running: number; jobsPerSecond: number } & JobQueue['stats'];
  workers: (WorkerReport & { lastSeen: string })[];
  cores: number;
  /** The store's size and what its limit evicted (store.maxSize), when this process keeps one. */
  store?: SizeLimitStatus;
}

/** The syncer's status now; workers count while they asked for work within `seenWithinMs`. */
export function farmStatus(
  syncer: { url: string; tree: IncludeTree; queue: JobQueue; store: Store; reapiRun?: string },
  seenWithinMs: number,
): FarmStatus {
  const { url, tree, queue, store, reapiRun } = syncer;
  const now = Date.now();
  const workers = [...queue.workers.values()]
    .filter((w) => now - w.lastSeen < seenWithinMs)
    .map((w) => ({ ...w, lastSeen: new Date(w.lastSeen).toISOString() }));
  return {
    syncer: {
      url,
      manifest: tree.manifest,
      files: tree.files,
      publishes: tree.publishes,
      roots: tree.roots,
      ...(reapiRun ? { reapiRun } : {}),
    },
    queue: { queued: queue.queued, running: queue.running, jobsPerSecond: queue.jobsPerSecond(now), ...queue.stats },
    workers,
    cores: workers.reduce((n, w) => n + w.cores, 0),
    store: store.limitStatus(),
  };
}
