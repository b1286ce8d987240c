import { readdirSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import type { AsyncSubscription } from '@parcel/watcher';
import { AccelError, errnoCode } from '../core/errors.ts';
import type { Log } from '../core/log.ts';
import { watchDirectory } from '../core/watcher.ts';
import type { Digest } from '../store/digest.ts';
import type { Store } from '../store/store.ts';
import { within } from './policy.ts';
import type { TreeManifest } from './protocol.ts';

/** Build outputs and editor droppings are not include files; shipping them would churn the manifest. */
const SKIP_FILE = /\.(o|obj|d|a|so|lo|gch|pch|tmp|swp)$|~$|^\.#/;
const SKIP_DIR = new Set(['.git', '.hg', '.svn', 'node_modules']);

interface Entry {
  size: number;
  mtimeMs: number;
  digest: string;
}

/**
 * The include trees the syncer ships: every file under the configured roots as a content-addressed manifest.
 * @parcel/watcher reports changes; a changed file is rehashed and a new manifest published, so a header
 * edit moves one blob (plus the manifest). Clients can also ask for a refresh of named paths or of
 * everything, which closes the window between an edit and its notification.
 */
export class IncludeTree {
  readonly roots: string[];
  readonly #store: Store;
  readonly #log: Log;
  readonly #entries = new Map<string, Entry>();
  readonly #subscriptions: AsyncSubscription[] = [];
  #manifest = '';
  #publishes = 0;
  #pending = new Set<string>();
  #timer: NodeJS.Timeout | undefined;
  #work: Promise<void> = Promise.resolve();

  constructor(store: Store, roots: string[], log: Log) {
    this.#store = store;
    this.#log = log;
    this.roots = roots.map((r) => resolve(r));
    for (const root of roots) {
      if (!isAbsolute(root)) {
        throw new AccelError('ACCEL_CONFIG_INVALID', `farm.dirs must hold absolute paths, not '${root}'`);
      }
    }
  }

  get manifest(): string {
    return this.#manifest;
  }

  get publishes(): number {
    return this.#publishes;
  }

  get files(): number {
    return this.#entries.size;
  }

  async start(home: string): Promise<void> {
    for (const root of this.roots) {
      try {
        if (!statSync(root).isDirectory()) throw new Error('not a directory');
      } catch (err) {
        throw new AccelError('ACCEL_FARM_NO_DIR', `include dir ${root} is not a directory`, {
          hint: 'farm.dirs lists existing directories, as absolute paths',
          cause: err,
        });
      }
    }
    await this.#serial(() => this.#scanAll());
    for (const root of this.roots) {
      this.#subscriptions.push(
        await watchDirectory(
          root,
          home,
          (events) => {
            for (const e of events) this.#pending.add(e.path);
            clearTimeout(this.#timer);
            this.#timer = setTimeout(() => void this.refresh([...this.#drain()]), 20);
          },
          (err) => this.#log.warn(`watching ${root}: ${err.message}`),
        ),
      );
    }
  }

  #drain(): string[] {
    const paths = [...this.#pending];
    this.#pending.clear();
    return paths;
  }

  /** Rehashes `paths` (or, without them, everything whose size or mtime changed); returns the manifest. */
  refresh(paths?: string[]): Promise<string> {
    return this.#serial(async () => {
      if (paths) for (const p of paths) await this.#update(resolve(p));
      else await this.#scanAll();
    });
  }

  async close(): Promise<void> {
    clearTimeout(this.#timer);
    await Promise.all(this.#subscriptions.map((s) => s.unsubscribe()));
    await this.#work;
  }

  /** One update at a time: the entry map and the published manifest never interleave. */
  #serial(fn: () => Promise<void>): Promise<string> {
    const next = this.#work.then(async () => {
      await fn();
      await this.#publish();
    });
    this.#work = next.catch((err: unknown) => this.#log.warn(`include tree: ${(err as Error).message}`));
    return next.then(() => this.#manifest);
  }

  async #scanAll(): Promise<void> {
    const seen = new Set<string>();
    for (const root of this.roots) await this.#walk(root, seen);
    for (const path of this.#entries.keys()) if (!seen.has(path)) this.#entries.delete(path);
  }

  async #walk(dir: string, seen: Set<string>): Promise<void> {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return;
      throw err;
    }
    for (const name of names) {
      const path = join(dir, name);
      let st: ReturnType<typeof statSync>;
      try {
        st = statSync(path);
      } catch {
        continue;
      }
      if (st.isDirectory()) {
        if (!SKIP_DIR.has(name)) await this.#walk(path, seen);
      } else if (st.isFile() && !SKIP_FILE.test(name)) {
        seen.add(path);
        await this.#hash(path, st.size, st.mtimeMs);
      }
    }
  }

  async #update(path: string): Promise<void> {
    if (!within(path, this.roots)) return;
    let st: ReturnType<typeof statSync> | undefined;
    try {
      st = statSync(path);
    } catch {
      st = undefined;
    }
    if (!st) {
      // Deleted: the file, or everything under a deleted directory.
      for (const p of this.#entries.keys()) if (p === path || p.startsWith(`${path}/`)) this.#entries.delete(p);
    } else if (st.isDirectory()) {
      await this.#walk(path, new Set());
    } else if (st.isFile() && !SKIP_FILE.test(path.slice(path.lastIndexOf('/') + 1))) {
      await this.#hash(path, st.size, st.mtimeMs, true);
    }
  }

  async #hash(path: string, size: number, mtimeMs: number, force = false): Promise<void> {
    const known = this.#entries.get(path);
    if (!force && known && known.size === size && known.mtimeMs === mtimeMs) return;
    try {
      const info = await this.#store.putFile(path);
      this.#entries.set(path, { size, mtimeMs, digest: info.digest });
    } catch (err) {
      if (isGone(err)) this.#entries.delete(path);
      else throw err;
    }
  }

  async #publish(): Promise<void> {
    const files: Record<string, string> = {};
    for (const path of [...this.#entries.keys()].sort()) files[path] = (this.#entries.get(path) as Entry).digest;
    const manifest: TreeManifest = { roots: this.roots, files };
    const info = await this.#store.putBuffer(Buffer.from(JSON.stringify(manifest)));
    if (info.digest !== this.#manifest) {
      // Workers fetch the published tree's files from this store: gc keeps them while this syncer runs.
      this.#store.hold(this.#store.processHold('farm-tree'), [info.digest, ...(Object.values(files) as Digest[])]);
      this.#manifest = info.digest;
      this.#publishes++;
      this.#log.debug(`include tree ${info.digest.slice(0, 12)}: ${this.#entries.size} files`);
    }
  }
}

function isGone(err: unknown): boolean {
  const code = errnoCode(err) ?? (err as { code?: string })?.code;
  return code === 'ENOENT' || code === 'ACCEL_FS_NOT_FOUND';
}
