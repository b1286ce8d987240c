import type { Log } from '../core/log.ts';
import { VERSION } from '../core/version.ts';
import type { BlobInfo } from '../store/cas.ts';
import type { Store } from '../store/store.ts';
import { Download, type DownloadHead, type DownloadOptions } from './download.ts';

export interface FetcherOptions {
  allow: readonly string[];
  stallMs: number;
  log: Log;
  onBytes?: (n: number) => void;
  /** Sent to one origin only (see DownloadOptions.authorization). */
  authorization?: { origin: string; value: string };
}

/**
 * Downloads into the store with coalescing: while a download for a key runs, every other request for the
 * same key follows it instead of starting another (50 cold requests, one upstream request).
 */
export class Fetcher {
  readonly #store: Store;
  readonly #options: FetcherOptions;
  readonly #inflight = new Map<string, Download>();

  constructor(store: Store, options: FetcherOptions) {
    this.#store = store;
    this.#options = options;
  }

  get inflight(): number {
    return this.#inflight.size;
  }

  /** Stops every download in flight and waits until each has settled (temp files removed, nothing stored). */
  async close(): Promise<void> {
    await Promise.all([...this.#inflight.values()].map((d) => d.abort()));
  }

  /** The running download for `key`, or a new one over `candidates`. */
  fetch(
    key: string,
    request: Pick<DownloadOptions, 'candidates' | 'expected' | 'conditional' | 'originHeaders'>,
    /** Runs once the blob is stored, before later requests stop joining this download: record the ref here. */
    onStored?: (info: BlobInfo, head: DownloadHead) => void,
  ): { download: Download; joined: boolean } {
    const running = this.#inflight.get(key);
    if (running) return { download: running, joined: true };
    const download = new Download(this.#store, {
      ...request,
      allow: this.#options.allow,
      stallMs: this.#options.stallMs,
      userAgent: `accel/${VERSION}`,
      onBytes: this.#options.onBytes,
      authorization: this.#options.authorization,
    });
    this.#inflight.set(key, download);
    const forget = () => {
      if (this.#inflight.get(key) === download) this.#inflight.delete(key);
    };
    download.done.then(
      async (info) => {
        if (info && onStored) onStored(info, await download.head);
        forget();
      },
      (err: unknown) => {
        forget();
        if ((err as { code?: string })?.code === 'ACCEL_FETCH_ABORTED') return;
        this.#options.log.warn(`fetch of ${request.candidates[0]} failed: ${(err as Error).message}`);
      },
    );
    return { download, joined: false };
  }
}
