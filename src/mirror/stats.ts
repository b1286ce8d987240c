/** Counters of one mirror process, for /_accel/status and /_accel/metrics. */
export interface MirrorStats {
  startedAt: number;
  requests: number;
  hits: number;
  misses: number;
  revalidated: number;
  stale: number;
  /** Requests answered with an error status by the mirror itself (bad path, refused, offline miss, ...). */
  errors: number;
  upstreamErrors: number;
  bytesServed: number;
  bytesFetched: number;
}

export function newStats(now: number): MirrorStats {
  return {
    startedAt: now,
    requests: 0,
    hits: 0,
    misses: 0,
    revalidated: 0,
    stale: 0,
    errors: 0,
    upstreamErrors: 0,
    bytesServed: 0,
    bytesFetched: 0,
  };
}

export type CacheStatus = 'HIT' | 'MISS' | 'REVALIDATED' | 'STALE';

export function count(stats: MirrorStats, status: CacheStatus): void {
  if (status === 'HIT') stats.hits++;
  else if (status === 'MISS') stats.misses++;
  else if (status === 'REVALIDATED') stats.revalidated++;
  else stats.stale++;
}
