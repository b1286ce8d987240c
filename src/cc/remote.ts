import { fetchBuffer } from '../net/http.ts';
import type { Digest } from '../store/digest.ts';
import type { Store } from '../store/store.ts';
import type { FileHasher } from './filehash.ts';
import { findMatching, type ManifestEntry } from './manifest.ts';
import type { CompileResult } from './result.ts';

/**
 * A shared cache in Bazel's HTTP layout (`accel mirror serve` answers it at /cache): the manifest of a key is
 * the action-cache entry `ac/<key>`; results and outputs are `cas/<sha256>`. Local first, remote second; a
 * remote hit is copied into the local store. Remote trouble is a miss, never a failed compile.
 */
export class RemoteCache {
  readonly #base: string;
  readonly #headers: Record<string, string>;

  constructor(base: string, token: string | undefined) {
    this.#base = base.replace(/\/+$/, '');
    this.#headers = token ? { authorization: `Bearer ${token}` } : {};
  }

  /** Finds a result for `key` whose headers match here, copying what it needs into the local store. */
  async fetchResult(
    store: Store,
    key: Digest,
    cwd: string,
    hasher: FileHasher,
  ): Promise<{ result: Digest; entry: ManifestEntry } | undefined> {
    const manifest = await this.#get(`ac/${key}`);
    if (!manifest) return undefined;
    let entries: ManifestEntry[];
    try {
      entries = (JSON.parse(manifest.toString('utf8')) as { entries: ManifestEntry[] }).entries;
    } catch {
      return undefined;
    }
    const entry = findMatching(entries, cwd, hasher);
    if (!entry) return undefined;
    const resultBytes = await this.#getBlob(store, entry.result);
    if (!resultBytes) return undefined;
    const result = JSON.parse(resultBytes.toString('utf8')) as CompileResult;
    for (const digest of [result.object, result.dep?.digest]) {
      if (digest && !store.has(digest) && !(await this.#getBlob(store, digest))) return undefined;
    }
    return { result: entry.result, entry };
  }

  /** Uploads a result's blobs, then the key's manifest (so a reader never finds a manifest whose blobs are missing). */
  async publish(store: Store, key: Digest, entries: ManifestEntry[], newest: ManifestEntry): Promise<void> {
    const raw = store.read(newest.result);
    if (!raw) return;
    const result = JSON.parse(raw.toString('utf8')) as CompileResult;
    for (const digest of [result.object, result.dep?.digest, newest.result]) {
      const data = digest && store.read(digest);
      if (data && !(await this.#put(`cas/${digest}`, data))) return;
    }
    await this.#put(`ac/${key}`, Buffer.from(JSON.stringify({ entries })));
  }

  async #getBlob(store: Store, digest: Digest): Promise<Buffer | undefined> {
    const data = await this.#get(`cas/${digest}`);
    if (!data) return undefined;
    try {
      await store.putBuffer(data, { expected: digest });
    } catch {
      return undefined;
    }
    return data;
  }

  async #get(path: string): Promise<Buffer | undefined> {
    try {
      const res = await fetchBuffer(new URL(`${this.#base}/${path}`), { headers: this.#headers, idleMs: 10_000 });
      return res.status === 200 ? res.body : undefined;
    } catch {
      return undefined;
    }
  }

  async #put(path: string, body: Buffer): Promise<boolean> {
    try {
      const res = await fetchBuffer(new URL(`${this.#base}/${path}`), {
        method: 'PUT',
        headers: { ...this.#headers, 'content-length': body.length },
        body,
        idleMs: 30_000,
      });
      return res.status >= 200 && res.status < 300;
    } catch {
      return false;
    }
  }
}
