import { join } from 'node:path';
import { homeLayout } from '../core/home-layout.ts';
import type { Digest } from './digest.ts';

/**
 * The store's part of the home. Every path under ACCEL_HOME is spelled in core/home-layout.ts (in core because
 * core and net need it too and sit below store); this is the store's view of that table.
 */
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
  const { store, run } = homeLayout(home);
  return {
    home,
    index: store.index,
    blobs: store.blobs,
    tmp: store.tmp,
    quarantine: store.quarantine,
    run: run.dir,
    gcLock: run.gcLock,
  };
}

export function blobPath(layout: Layout, digest: Digest): string {
  return join(layout.blobs, digest.slice(0, 2), digest);
}
