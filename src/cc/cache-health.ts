import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { replaceFileSync } from '../core/atomic-fs.ts';
import { makeDirs } from '../core/dirs.ts';
import { errnoCode } from '../core/errors.ts';
import { homeLayout } from '../core/home-layout.ts';

/** How long a cache server that failed is left alone: its keys miss at once meanwhile. */
const CACHE_DOWN_MS = 30_000;

/**
 * Cache servers found unreachable (or answering 5xx), remembered for CACHE_DOWN_MS so that a dead shard costs
 * one time-out per window, not one per request. In memory for the long-lived daemon, and in a small JSON file
 * (url → until, ms since the epoch) for the one-shot `accel cc --` processes of the same build. The file is
 * advice: two processes writing at once may lose one's entry, which costs one more time-out.
 */
export class CacheHealth {
  readonly #file: string | undefined;
  readonly #down = new Map<string, number>();
  #loaded = false;

  constructor(file?: string) {
    this.#file = file;
  }

  isDown(url: string, now = Date.now()): boolean {
    if (!this.#loaded) {
      this.#loaded = true;
      for (const [u, until] of Object.entries(this.#readFile())) this.#down.set(u, until);
    }
    const until = this.#down.get(url);
    return until !== undefined && now < until;
  }

  markDown(url: string, now = Date.now()): void {
    this.#down.set(url, now + CACHE_DOWN_MS);
    this.#write(now);
  }

  /** A server that answered is forgotten as down, here and in the file. */
  markUp(url: string): void {
    if (this.#down.delete(url)) this.#write(Date.now(), url);
  }

  #readFile(): Record<string, number> {
    if (!this.#file) return {};
    try {
      const value = JSON.parse(readFileSync(this.#file, 'utf8')) as unknown;
      return typeof value === 'object' && value !== null ? (value as Record<string, number>) : {};
    } catch (err) {
      if (errnoCode(err) === 'ENOENT' || err instanceof SyntaxError) return {};
      throw err;
    }
  }

  #write(now: number, forget?: string): void {
    if (!this.#file) return;
    const entries = Object.entries({ ...this.#readFile(), ...Object.fromEntries(this.#down) });
    const live = Object.fromEntries(entries.filter(([u, until]) => u !== forget && until > now));
    try {
      makeDirs(dirname(this.#file), { mode: 0o700 });
      replaceFileSync(this.#file, `${JSON.stringify(live)}\n`, 0o600);
    } catch (err) {
      // Remembering is best effort (a read-only or full home still builds): file system refusals pass here.
      if (errnoCode(err) === undefined) throw err;
    }
  }
}

/** The file one home's `accel cc` processes share their view of down cache servers in. */
export function cacheHealthFor(home: string): CacheHealth {
  return new CacheHealth(homeLayout(home).run.cacheDown);
}
