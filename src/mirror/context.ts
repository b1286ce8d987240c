import type { Log } from '../core/log.ts';
import type { Fetcher } from '../fetch/fetcher.ts';
import type { Store } from '../store/store.ts';
import type { AptArchive } from './apt/archive.ts';
import type { FreshnessPolicy } from './freshness.ts';
import type { Parent } from './parent.ts';
import type { MirrorStats } from './stats.ts';

/** What every route of one mirror server shares: its store, fetcher, counters and settings. */
export interface MirrorContext {
  store: Store;
  fetcher: Fetcher;
  stats: MirrorStats;
  policy: FreshnessPolicy;
  offline: boolean;
  token: string;
  cacheToken: string;
  remaps: Record<string, string[]>;
  log: Log;
  now: () => number;
  /** Digests of blobs hashed once by this process while serving them (see respond.ts). */
  verified: Map<string, string>;
  apt: AptArchive;
  /** Hosts the forward proxy serves besides the remaps' upstreams. */
  proxyHosts: string[];
  /** Local conda channel directories served read-only at /conda/<name>/ (config mirror.condaChannels). */
  condaChannels: Record<string, string>;
  /** The mirror every miss is asked of instead of the origin (config mirror.parent); see parent.ts. */
  parent?: Parent;
  /** Upstreams allowed on private addresses (config mirror.allow), without the parent's own address. */
  allow: readonly string[];
}
