import { fetchBuffer } from '../net/http.ts';
import type { CacheHealth } from './cache-health.ts';

/**
 * One server of a shared cache in Bazel's HTTP layout (`ac/<key>`, `cas/<sha256>` under its base URL): accel's
 * mirror at /cache, bazel-remote, nginx with WebDAV PUT, any server that answers GET and PUT there. Trouble is
 * an answer of "nothing": a server that cannot be reached or answers 5xx is remembered as down for a while
 * (CacheHealth) and not asked meanwhile.
 */
export class CacheServer {
  readonly url: string;
  readonly weight: number;
  readonly #base: string;
  readonly #headers: Record<string, string>;
  readonly #health: CacheHealth;

  constructor(options: { url: string; weight: number; token: string | undefined; health: CacheHealth }) {
    this.url = options.url;
    this.weight = options.weight;
    this.#base = options.url.replace(/\/+$/, '');
    this.#headers = options.token ? { authorization: `Bearer ${options.token}` } : {};
    this.#health = options.health;
  }

  /** The rendezvous identity: the URL, so every client that names a server the same way agrees on its keys. */
  get id(): string {
    return this.#base;
  }

  get down(): boolean {
    return this.#health.isDown(this.url);
  }

  async get(path: string): Promise<Buffer | undefined> {
    const res = await this.#send(path, { idleMs: 10_000 });
    return res?.status === 200 ? res.body : undefined;
  }

  async put(path: string, body: Buffer): Promise<boolean> {
    const res = await this.#send(path, {
      method: 'PUT',
      headers: { 'content-length': body.length },
      body,
      idleMs: 30_000,
    });
    return res !== undefined && res.status >= 200 && res.status < 300;
  }

  async #send(
    path: string,
    options: { method?: string; headers?: Record<string, number>; body?: Buffer; idleMs: number },
  ): Promise<{ status: number; body: Buffer } | undefined> {
    if (this.down) return undefined;
    try {
      const res = await fetchBuffer(new URL(`${this.#base}/${path}`), {
        ...options,
        headers: { ...this.#headers, ...options.headers },
      });
      if (res.status >= 500) this.#health.markDown(this.url);
      else this.#health.markUp(this.url);
      return res;
    } catch {
      this.#health.markDown(this.url);
      return undefined;
    }
  }
}
