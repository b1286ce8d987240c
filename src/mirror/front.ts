import { existsSync, readdirSync, renameSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { tempName } from '../core/atomic-fs.ts';
import { makeDirs } from '../core/dirs.ts';
import { homeLayout } from '../core/home-layout.ts';
import type { Digest } from '../store/digest.ts';
import { blobPath } from '../store/layout.ts';
import type { Store } from '../store/store.ts';
import { URL_NS, type UrlMeta } from './url-ref.ts';

/**
 * The tree a web server in front of the mirror (nginx, `accel mirror config nginx`) serves hits from, with
 * sendfile and without asking accel: `$ACCEL_HOME/front/<scheme>/<host>/<path>`, one symbolic link per
 * immutable URL to its blob, so the mirror's own paths (`/https/<host>/<path>`) map onto it one to one.
 * It exists only once `mirror config nginx` made it; from then on the mirror, prefetch and import keep it.
 * Only immutable content is linked (versioned archives, pinned URLs): what must be revalidated, carries a
 * query, or has a path a server would decode differently always goes to accel. A link whose blob gc evicted
 * dangles and the front server falls through to accel, which fetches it again; `sweepFront` removes those.
 */
export function frontDir(home: string): string {
  return homeLayout(home).front;
}

/** Path characters that mean the same thing to nginx's decoded `$uri` and to the URL as stored. */
const PLAIN_PATH = /^\/[A-Za-z0-9._~+\-/]*$/;

/**
 * Where a URL's link goes in the tree, or undefined when the front must leave it to accel. Besides
 * `http(s)://host/path` (served at `/http(s)/host/path`), a remap's Debian `pool/` files (ref key
 * `r/<remap>/pool/…`, served at `/r/<remap>/pool/…`) are linked: packages are what apt clients fetch most.
 */
export function frontPath(home: string, url: string): string | undefined {
  const direct = /^(https?):\/\/([A-Za-z0-9.-]+(?::\d+)?)(\/[^?#]*)$/.exec(url);
  const pool = /^r\/([A-Za-z0-9._-]+)(\/pool\/[^?#]*)$/.exec(url);
  const [dir, path] = direct
    ? [join(direct[1] as string, (direct[2] as string).toLowerCase()), direct[3] as string]
    : pool
      ? [join('r', pool[1] as string), pool[2] as string]
      : [undefined, undefined];
  if (dir === undefined || path === undefined) return undefined;
  if (!PLAIN_PATH.test(path) || path.endsWith('/') || path.split('/').some((s) => s === '.' || s === '..')) {
    return undefined;
  }
  return join(frontDir(home), dir, path);
}

/**
 * Links `url` to its blob in the front tree (atomically replacing an older link), when the tree exists.
 * Returns whether it did.
 */
export function linkFront(store: Store, url: string, digest: Digest): boolean {
  const home = store.layout.home;
  if (!existsSync(frontDir(home))) return false;
  const link = frontPath(home, url);
  if (!link) return false;
  const temp = join(dirname(link), tempName('.link-'));
  try {
    makeDirs(dirname(link));
    symlinkSync(blobPath(store.layout, digest), temp);
    renameSync(temp, link);
    return true;
  } catch {
    // A name that is a directory here (`/x` and `/x/y` both immutable): that URL stays with accel.
    rmSync(temp, { force: true });
    return false;
  }
}

/** Fills a new front tree with every immutable URL the store already holds. Returns how many were linked. */
export function fillFront(store: Store): number {
  makeDirs(frontDir(store.layout.home), { mode: 0o755 });
  let linked = 0;
  for (const ref of store.refs.list(URL_NS)) {
    const meta = ref.meta as UrlMeta | undefined;
    if (meta?.immutable && store.has(ref.digest as Digest) && linkFront(store, ref.key, ref.digest as Digest)) {
      linked++;
    }
  }
  return linked;
}

/** Removes links whose blob is gone (after gc or a quarantine). Returns how many. */
export function sweepFront(home: string): number {
  const root = frontDir(home);
  if (!existsSync(root)) return 0;
  let removed = 0;
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isSymbolicLink() && !targetExists(path)) {
        rmSync(path, { force: true });
        removed++;
      }
    }
  };
  walk(root);
  return removed;
}

/** Whether a link's target is there (statSync follows the link; a dangling one throws). */
function targetExists(link: string): boolean {
  try {
    statSync(link);
    return true;
  } catch {
    return false;
  }
}
