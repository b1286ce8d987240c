import { join } from 'node:path';
import type { Digest } from './digest.ts';

/** Where everything lives under ACCEL_HOME; the one place that spells these paths. */
export interface Layout {
  home: string;
  index: string;
  blobs: string;
  tmp: string;
  quarantine: string;
}

export function layoutOf(home: string): Layout {
  return {
    home,
    index: join(home, 'index.db'),
    blobs: join(home, 'blobs', 'sha256'),
    tmp: join(home, 'tmp'),
    quarantine: join(home, 'quarantine'),
  };
}

export function blobPath(layout: Layout, digest: Digest): string {
  return join(layout.blobs, digest.slice(0, 2), digest);
}
