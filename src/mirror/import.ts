import { createReadStream, type Dirent, readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { errnoCode, fsError, isAccelError } from '../core/errors.ts';
import { type Digest, isDigest, newHasher } from '../store/digest.ts';
import type { Store } from '../store/store.ts';
import { linkFront } from './front.ts';
import { URL_NS, type UrlMeta } from './url-ref.ts';
import type { WantedFile } from './wanted.ts';

export interface ImportResult {
  imported: { file: string; digest: Digest; urls: string[] }[];
  failed: { file: string; reason: string }[];
}

export interface ImportOptions {
  /** What the build wants: imported files that satisfy an entry get a `url` ref for each of its URLs. */
  wanted?: WantedFile[];
  now?: () => number;
}

/** Failures that concern one file; anything else (a full disk, say) stops the whole import. */
const PER_FILE_CODES = new Set([
  'ACCEL_STORE_DIGEST_MISMATCH',
  'ACCEL_STORE_NOT_A_FILE',
  'ACCEL_FS_PERMISSION',
  'ACCEL_FS_NOT_FOUND',
  'ACCEL_FS_IS_DIR',
]);

/**
 * Imports files already on disk so the mirror can serve them offline: a Bazel repository cache
 * (`content_addressable/sha256/<hex>/file`) or a distdir, a flat folder of files named like the last segment
 * of their URL. Nothing is stored that contradicts a known checksum.
 */
export async function importDirectory(store: Store, dir: string, options: ImportOptions = {}): Promise<ImportResult> {
  const entries = listDir(dir);
  const run: ImportRun = {
    store,
    wanted: options.wanted ?? [],
    now: options.now ?? Date.now,
    result: { imported: [], failed: [] },
  };
  const cache = repositoryCacheRoot(dir, entries);
  if (cache) await importRepositoryCache(run, cache);
  else await importDistdir(run, dir, entries);
  return run.result;
}

function listDir(dir: string): Dirent[] {
  try {
    return readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  } catch (err) {
    throw fsError(err, 'reading', dir);
  }
}

/** Bazel's `--repository_cache` folder, its `content_addressable` child, or that one's `sha256` child. */
function repositoryCacheRoot(dir: string, entries: Dirent[]): string | undefined {
  const has = (name: string) => entries.some((e) => e.name === name && e.isDirectory());
  if (has('content_addressable') && isDirectory(join(dir, 'content_addressable', 'sha256'))) {
    return join(dir, 'content_addressable', 'sha256');
  }
  if (basename(dir) === 'content_addressable' && has('sha256')) return join(dir, 'sha256');
  if (basename(dir) === 'sha256') return dir;
  return undefined;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return false;
    throw err;
  }
}

/** Each entry's folder name is the sha256 of its `file`, so every put is verified against it. */
async function importRepositoryCache(run: ImportRun, root: string): Promise<void> {
  for (const entry of listDir(root)) {
    if (!entry.isDirectory() || !isDigest(entry.name)) continue;
    const file = join(root, entry.name, 'file');
    const wanted = run.wanted.filter((w) => w.sha256 === entry.name);
    await storeAndRef(run, file, entry.name, wanted);
  }
}

/**
 * A distdir file matches the wanted entries one of whose URLs ends in its name. It satisfies a pinned entry
 * only when it hashes to that entry's sha256, and an unpinned entry always; a file whose name matches only
 * pinned entries of other content fails and is not stored. A file that matches nothing is stored without refs.
 */
async function importDistdir(run: ImportRun, dir: string, entries: Dirent[]): Promise<void> {
  const byName = wantedByFileName(run.wanted);
  for (const entry of entries) {
    if (entry.name.startsWith('.')) continue;
    const file = join(dir, entry.name);
    if (!entry.isFile() && !(entry.isSymbolicLink() && isFile(file))) continue;
    const candidates = byName.get(entry.name) ?? [];
    const pinned = new Set(candidates.flatMap((w) => (w.sha256 === undefined ? [] : [w.sha256])));
    const unpinned = candidates.filter((w) => w.sha256 === undefined);
    if (pinned.size === 0 || unpinned.length > 0) {
      await storeAndRef(run, file, undefined, candidates);
    } else if (pinned.size === 1) {
      await storeAndRef(run, file, [...pinned][0], candidates);
    } else {
      // Several archives share this name (GitHub's `v1.0.tar.gz`): hash first, so a stranger is never stored.
      const digest = await hashFile(file);
      if (pinned.has(digest)) {
        await storeAndRef(run, file, digest, candidates);
      } else {
        const reason = `content hashes to ${digest}, expected one of ${[...pinned].join(', ')}`;
        run.result.failed.push({ file, reason });
      }
    }
  }
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return false;
    throw err;
  }
}

function wantedByFileName(wanted: WantedFile[]): Map<string, WantedFile[]> {
  const byName = new Map<string, WantedFile[]>();
  for (const w of wanted) {
    const names = new Set(w.urls.map(fileNameOf).filter((n) => n !== ''));
    for (const name of names) byName.set(name, [...(byName.get(name) ?? []), w]);
  }
  return byName;
}

/** The decoded last path segment of a URL: the name Bazel gives the file in a distdir. */
function fileNameOf(url: string): string {
  const segment = new URL(url).pathname.split('/').pop() ?? '';
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

async function hashFile(file: string): Promise<Digest> {
  const hasher = newHasher();
  try {
    for await (const chunk of createReadStream(file)) hasher.update(chunk as Buffer);
  } catch (err) {
    throw fsError(err, 'reading', file);
  }
  return hasher.digest('hex') as Digest;
}

/** One import in progress. */
interface ImportRun {
  store: Store;
  wanted: WantedFile[];
  now: () => number;
  result: ImportResult;
}

/**
 * Stores `file` (verified against `expected` when given), then refs the URLs of the candidates it satisfies:
 * refs come after the blob, so a ref never points at content that failed its check.
 */
async function storeAndRef(
  run: ImportRun,
  file: string,
  expected: Digest | undefined,
  candidates: WantedFile[],
): Promise<void> {
  let digest: Digest;
  try {
    digest = (await run.store.putFile(file, expected === undefined ? {} : { expected })).digest;
  } catch (err) {
    if (!isAccelError(err) || !PER_FILE_CODES.has(err.code)) throw err;
    run.result.failed.push({ file, reason: err.message });
    return;
  }
  // A URL of a pinned entry is immutable even when an unpinned entry lists it too.
  const immutable = new Map<string, boolean>();
  for (const w of candidates) {
    if (w.sha256 !== undefined && w.sha256 !== digest) continue;
    for (const url of w.urls) immutable.set(url, (immutable.get(url) ?? false) || w.sha256 !== undefined);
  }
  const fetchedAt = run.now();
  for (const [url, pinned] of immutable) {
    const meta: UrlMeta = { immutable: pinned, fetchedAt, ...(pinned ? { pinned } : {}) };
    run.store.refs.set(URL_NS, url, digest, meta);
    if (pinned) linkFront(run.store, url, digest);
  }
  run.result.imported.push({ file, digest, urls: [...immutable.keys()] });
}
