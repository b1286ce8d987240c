import PQueue from 'p-queue';
import type { Fetcher } from '../fetch/fetcher.ts';
import type { Digest } from '../store/digest.ts';
import type { Store } from '../store/store.ts';
import { type FreshnessPolicy, isImmutableUrl } from './freshness.ts';
import { linkFront } from './front.ts';
import { URL_NS, type UrlMeta } from './url-ref.ts';
import type { WantedFile } from './wanted.ts';

export interface PrefetchResult {
  fetched: { url: string; digest: Digest; size: number }[];
  /** Already in the store (by checksum or by URL): nothing downloaded. */
  cached: { url: string; digest: Digest }[];
  failed: { url: string; source: string; reason: string }[];
}

export interface PrefetchOptions {
  concurrency: number;
  policy: FreshnessPolicy;
  now: () => number;
  onDone?: (url: string) => void;
}

/**
 * Warms the cache with what a build will want, in parallel. A file whose checksum the store already holds
 * (an imported repository cache) only gains URL refs; the others are downloaded through the same fetcher
 * the server uses, each wanted file's URLs tried in order like Bazel does.
 */
export async function prefetch(
  store: Store,
  fetcher: Fetcher,
  wanted: WantedFile[],
  options: PrefetchOptions,
): Promise<PrefetchResult> {
  const result: PrefetchResult = { fetched: [], cached: [], failed: [] };
  const queue = new PQueue({ concurrency: options.concurrency });
  const record = (file: WantedFile, digest: Digest, meta: Omit<UrlMeta, 'immutable' | 'fetchedAt'> = {}) => {
    for (const url of file.urls) {
      const immutable = file.sha256 !== undefined || isImmutableUrl(url, options.policy);
      const pinned = file.sha256 !== undefined ? { pinned: true } : {};
      store.refs.set(URL_NS, url, digest, {
        ...meta,
        ...pinned,
        immutable,
        fetchedAt: options.now(),
      } satisfies UrlMeta);
      if (immutable) linkFront(store, url, digest);
    }
  };
  for (const file of wanted) {
    const url = file.urls[0];
    if (!url) continue;
    const known = cachedDigest(store, file);
    if (known) {
      record(file, known);
      result.cached.push({ url, digest: known });
      options.onDone?.(url);
      continue;
    }
    queue.add(async () => {
      const key = file.sha256 ? `${url} sha256=${file.sha256}` : url;
      const { download } = fetcher.fetch(key, { candidates: file.urls, expected: file.sha256 });
      try {
        const info = await download.done;
        const head = await download.head;
        if (!info || head.kind !== 'body') {
          const why = head.kind === 'status' ? `upstream answered ${head.status}` : 'no content';
          result.failed.push({ url, source: file.source, reason: why });
        } else {
          record(file, info.digest, {
            etag: head.etag,
            lastModified: head.lastModified,
            contentType: head.contentType,
          });
          result.fetched.push({ url, digest: info.digest, size: info.size });
        }
      } catch (err) {
        result.failed.push({ url, source: file.source, reason: (err as Error).message });
      }
      options.onDone?.(url);
    });
  }
  await queue.onIdle();
  return result;
}

function cachedDigest(store: Store, file: WantedFile): Digest | undefined {
  if (file.sha256) return store.has(file.sha256) ? file.sha256 : undefined;
  for (const url of file.urls) {
    const ref = store.refs.get(URL_NS, url);
    if (ref && store.has(ref.digest)) return ref.digest;
  }
  return undefined;
}
