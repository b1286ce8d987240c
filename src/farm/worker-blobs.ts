import type { MtlsClient } from '../net/client.ts';
import type { Digest } from '../store/digest.ts';
import type { Store } from '../store/store.ts';
import { parseMessage, type TreeManifest, TreeManifestSchema } from './protocol.ts';

/**
 * A worker's blobs from and to the syncer: fetches what its store lacks (each blob once, however many jobs
 * want it), keeps the last include-tree manifests with their files held, and uploads large outputs.
 */
export class WorkerBlobs {
  readonly #store: Store;
  readonly #client: MtlsClient;
  readonly #counters: { blobsFetched: number; bytesFetched: number };
  readonly #manifests = new Map<string, TreeManifest>();
  readonly #fetching = new Map<string, Promise<void>>();

  constructor(store: Store, client: MtlsClient, counters: { blobsFetched: number; bytesFetched: number }) {
    this.#store = store;
    this.#client = client;
    this.#counters = counters;
  }

  async manifest(digest: string): Promise<TreeManifest> {
    const store = this.#store;
    const known = this.#manifests.get(digest);
    if (known) return known;
    await this.fetch([digest], false);
    const manifest = parseMessage(
      TreeManifestSchema,
      JSON.parse((store.read(digest as Digest) as Buffer).toString()),
      'include-tree manifest',
    );
    this.#manifests.set(digest, manifest);
    // A tree's files stay in this store while its manifest is one of the last eight: jobs in flight read them.
    store.hold(store.processHold(`tree:${digest}`), [digest as Digest, ...(Object.values(manifest.files) as Digest[])]);
    if (this.#manifests.size > 8) {
      const oldest = this.#manifests.keys().next().value as string;
      this.#manifests.delete(oldest);
      store.release(store.processHold(`tree:${oldest}`));
    }
    return manifest;
  }

  /** Fetches the blobs this store lacks, each once even when several jobs need it at the same time. */
  async fetch(digests: string[], count = true): Promise<void> {
    const store = this.#store;
    const wanted = [...new Set(digests)].filter((d) => !store.has(d as Digest));
    await Promise.all(
      wanted.map((digest) => {
        let p = this.#fetching.get(digest);
        if (!p) {
          p = (async () => {
            const res = await this.#client.request('GET', `/blobs/${digest}`);
            if (res.status !== 200) throw new Error(`blob ${digest} not on the syncer (${res.status})`);
            await store.putBuffer(res.body, { expected: digest as Digest });
            if (count) {
              this.#counters.blobsFetched++;
              this.#counters.bytesFetched += res.body.length;
            }
          })().finally(() => this.#fetching.delete(digest));
          this.#fetching.set(digest, p);
        }
        return p;
      }),
    );
  }

  /** Sends a large output to the syncer unless it already has it. */
  async upload(digest: string, data: Buffer): Promise<void> {
    const { value } = await this.#client.json<{ missing: string[] }>('POST', '/blobs/missing', { digests: [digest] });
    if (value.missing.length === 0) return;
    const res = await this.#client.request('PUT', `/blobs/${digest}`, data);
    if (res.status !== 200) throw new Error(`uploading an output: ${res.status} ${res.body.toString()}`);
  }
}
