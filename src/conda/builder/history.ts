import type { Digest } from '../../store/digest.ts';
import { REF_NS } from '../../store/namespaces.ts';
import type { Store } from '../../store/store.ts';
import type { FeedstockResult } from './context.ts';

/** One line of `accel conda builds`: kept as a ref whose digest is the build's log. */
interface BuildEntry {
  feedstock: string;
  status: FeedstockResult['status'];
  started: string;
  seconds: number;
  packages: string[];
  log: string | null;
  error: string | null;
  /** The compile cache's outcomes for the build's compiles (absent without the cache or on a store hit). */
  cc?: FeedstockResult['cc'];
  /** Build scripts not run because a build with the same inputs ran them (absent when none). */
  scripts?: FeedstockResult['scripts'];
}

const NS = REF_NS.condaBuilds;
/** The empty blob's digest: the ref of a build that failed before it had a log. */
const EMPTY = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' as Digest;

export function recordBuild(store: Store, r: FeedstockResult, startedAt: number): void {
  const entry: BuildEntry = {
    feedstock: r.feedstock,
    status: r.status,
    started: new Date(startedAt).toISOString(),
    seconds: Math.round(r.seconds * 1000) / 1000,
    packages: r.packages.map((p) => `${p.subdir}/${p.filename}`),
    log: r.log,
    error: r.error ? `[${r.error.code}] ${r.error.message.split('\n')[0]}` : null,
    ...(r.cc ? { cc: r.cc } : {}),
    ...(r.scripts?.reused ? { scripts: r.scripts } : {}),
  };
  // Keys sort by time; the pid and feedstock keep two builds of the same millisecond apart.
  const key = `${String(startedAt).padStart(15, '0')}-${process.pid}-${r.feedstock}`;
  store.refs.set(NS, key, (r.log ?? EMPTY) as Digest, entry);
}

/** The most recent builds, newest first. */
export function recentBuilds(store: Store, limit: number): BuildEntry[] {
  const all = [...store.refs.list(NS)];
  return all
    .slice(-limit)
    .reverse()
    .map((ref) => ref.meta as BuildEntry);
}
