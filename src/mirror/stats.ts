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
  /** Per upstream host: downloads finished, their bytes, and failures. */
  upstreams: Record<string, { downloads: number; bytes: number; failures: number }>;
  /** The latest failed requests, newest first (at most RECENT). */
  recentFailures: { at: number; url: string; status: number; error: string }[];
  /** The latest downloads from upstreams, newest first (at most RECENT). */
  recentDownloads: { at: number; url: string; bytes: number; ms: number }[];
}

/** How many failures and downloads the status page remembers. */
const RECENT = 20;

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
    upstreams: {},
    recentFailures: [],
    recentDownloads: [],
  };
}

export type CacheStatus = 'HIT' | 'MISS' | 'REVALIDATED' | 'STALE';

export function count(stats: MirrorStats, status: CacheStatus): void {
  if (status === 'HIT') stats.hits++;
  else if (status === 'MISS') stats.misses++;
  else if (status === 'REVALIDATED') stats.revalidated++;
  else stats.stale++;
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return '(invalid URL)';
  }
}

function upstream(stats: MirrorStats, url: string) {
  const host = hostOf(url);
  stats.upstreams[host] ??= { downloads: 0, bytes: 0, failures: 0 };
  return stats.upstreams[host];
}

/** A download from `url` finished and was stored. */
export function noteDownload(stats: MirrorStats, url: string, bytes: number, ms: number, now: number): void {
  const u = upstream(stats, url);
  u.downloads++;
  u.bytes += bytes;
  stats.recentDownloads.unshift({ at: now, url, bytes, ms: Math.round(ms) });
  stats.recentDownloads.length = Math.min(stats.recentDownloads.length, RECENT);
}

/** A request for `url` failed with `status`; `upstreamFault` when the upstream (not the client) caused it. */
export function noteFailure(
  stats: MirrorStats,
  url: string,
  status: number,
  error: string,
  now: number,
  upstreamFault: boolean,
): void {
  if (upstreamFault && /^https?:\/\//.test(url)) upstream(stats, url).failures++;
  stats.recentFailures.unshift({ at: now, url, status, error: error.split('\n')[0] ?? error });
  stats.recentFailures.length = Math.min(stats.recentFailures.length, RECENT);
}
