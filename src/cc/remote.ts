import type { RemoteTier } from '../core/remote-tiers.ts';
import type { Digest } from '../store/digest.ts';
import type { Store } from '../store/store.ts';
import type { CacheHealth } from './cache-health.ts';
import { CacheServer } from './cache-server.ts';
import { findMatching, type ManifestEntry, type ManifestLookup } from './manifest.ts';
import { rendezvousOwner } from './rendezvous.ts';
import type { CompileResult } from './result.ts';

/**
 * Shared caches in Bazel's HTTP layout (`accel mirror serve` answers it at /cache), in tiers: the manifest of a
 * key is the action-cache entry `ac/<key>`; results and outputs are `cas/<sha256>`. Local first, then the tiers
 * in order; a remote hit is copied into the local store (and, by the caller, back to the tiers before it).
 * Within a tier of shards, everything of one key (its manifest and its blobs) lives on the shard that owns the
 * key, so a shard that is down makes its keys miss and nothing else. Remote trouble is a miss, never a failed
 * compile.
 */
export class RemoteCache {
  readonly #tiers: CacheServer[][];

  constructor(tiers: readonly RemoteTier[], options: { token?: string; health: CacheHealth }) {
    this.#tiers = tiers.map((tier) =>
      tier.shards.map((s) => new CacheServer({ ...s, token: tier.token ?? options.token, health: options.health })),
    );
  }

  get tierCount(): number {
    return this.#tiers.length;
  }

  /**
   * Finds a result for `key` whose headers match here, copying what it needs into the local store. `tier` is
   * where it was found (0: the first).
   */
  async fetchResult(
    store: Store,
    key: Digest,
    lookup: ManifestLookup,
  ): Promise<{ result: Digest; entry: ManifestEntry; tier: number } | undefined> {
    for (const [tier, shards] of this.#tiers.entries()) {
      const found = await fetchFrom(rendezvousOwner(key, shards), store, key, lookup);
      if (found) return { ...found, tier };
    }
    return undefined;
  }

  /**
   * Uploads a result's blobs, then the key's manifest (so a reader never finds a manifest whose blobs are
   * missing), to the owner of `key` in each of the first `tiers` tiers (all by default), concurrently.
   */
  async publish(
    store: Store,
    key: Digest,
    entries: ManifestEntry[],
    newest: ManifestEntry,
    tiers = this.#tiers.length,
  ): Promise<void> {
    const raw = store.read(newest.result);
    if (!raw) return;
    const result = JSON.parse(raw.toString('utf8')) as CompileResult;
    const blobs: [Digest, Buffer][] = [];
    for (const digest of [result.object, result.dep?.digest, newest.result]) {
      const data = digest && store.read(digest);
      if (digest && data) blobs.push([digest, data]);
    }
    const manifest = Buffer.from(JSON.stringify({ entries }));
    await Promise.all(
      this.#tiers.slice(0, tiers).map(async (shards) => {
        const server = rendezvousOwner(key, shards);
        for (const [digest, data] of blobs) if (!(await server.put(`cas/${digest}`, data))) return;
        await server.put(`ac/${key}`, manifest);
      }),
    );
  }
}

async function fetchFrom(
  server: CacheServer,
  store: Store,
  key: Digest,
  lookup: ManifestLookup,
): Promise<{ result: Digest; entry: ManifestEntry } | undefined> {
  const manifest = await server.get(`ac/${key}`);
  if (!manifest) return undefined;
  let entries: ManifestEntry[];
  try {
    entries = (JSON.parse(manifest.toString('utf8')) as { entries: ManifestEntry[] }).entries;
  } catch {
    return undefined;
  }
  if (!Array.isArray(entries)) return undefined;
  const entry = findMatching(entries, lookup);
  if (!entry) return undefined;
  const resultBytes = store.read(entry.result) ?? (await fetchBlob(server, store, entry.result));
  if (!resultBytes) return undefined;
  let result: CompileResult;
  try {
    result = JSON.parse(resultBytes.toString('utf8')) as CompileResult;
  } catch {
    return undefined;
  }
  for (const digest of [result.object, result.dep?.digest]) {
    if (digest && !store.has(digest) && !(await fetchBlob(server, store, digest))) return undefined;
  }
  return { result: entry.result, entry };
}

/** A blob from `server` into the local store, checked against its digest (a wrong one is a miss). */
async function fetchBlob(server: CacheServer, store: Store, digest: Digest): Promise<Buffer | undefined> {
  const data = await server.get(`cas/${digest}`);
  if (!data) return undefined;
  try {
    await store.putBuffer(data, { expected: digest });
  } catch {
    return undefined;
  }
  return data;
}
