import { join } from 'node:path';
import type { Digest } from './digest.ts';

/** Where everything lives under ACCEL_HOME; the one place that spells these paths. */
export interface Layout {
  home: string;
  index: string;
  blobs: string;
  tmp: string;
  quarantine: string;
  /** Runtime files of the processes on this store: sockets, pid files, locks. */
  run: string;
  /** Held by the one process collecting garbage at a time (store/lock.ts). */
  gcLock: string;
}

export function layoutOf(home: string): Layout {
  return {
    home,
    index: join(home, 'index.db'),
    blobs: join(home, 'blobs', 'sha256'),
    tmp: join(home, 'tmp'),
    quarantine: join(home, 'quarantine'),
    run: join(home, 'run'),
    gcLock: join(home, 'run', 'gc.lock'),
  };
}

export function blobPath(layout: Layout, digest: Digest): string {
  return join(layout.blobs, digest.slice(0, 2), digest);
}
