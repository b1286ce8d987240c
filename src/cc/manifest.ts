import { statSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { expandCwd } from '../compiler/base-dirs.ts';
import { errnoCode } from '../core/errors.ts';
import type { Digest } from '../store/digest.ts';
import { REF_NS } from '../store/namespaces.ts';
import type { Store } from '../store/store.ts';
import type { FileHasher } from './filehash.ts';

/**
 * One way a key has compiled before: the headers it read (as the compiler named them, relative paths
 * resolved against the cwd at lookup; under a base directory in the `$CWD` form of base-dirs.ts) with their
 * content hashes, the paths that must still not exist (a new header there would shadow one of ours: ccache's
 * blind spot), and the result.
 */
export interface ManifestEntry {
  includes: [string, Digest][];
  absent: string[];
  /**
   * When a file it read names `__FILE__` and the key names paths relative to the cwd: the paths `__FILE__`
   * held (key.ts `macroPaths`). The object holds them, so only a compile with the same ones may use it.
   */
  fileMacroPaths?: string;
  result: Digest;
}

/** What a lookup compares an entry with: this compile's cwd, its files, and its `__FILE__` paths. */
export interface ManifestLookup {
  cwd: string;
  hasher: FileHasher;
  macroPaths: string;
}

const NS = REF_NS.ccManifest;
/** Entries kept per key: different header states of one source (branches, generated headers). */
const MAX_ENTRIES = 8;

export function manifestEntries(store: Store, key: Digest): ManifestEntry[] {
  return (store.refs.get(NS, key)?.meta as { entries?: ManifestEntry[] } | undefined)?.entries ?? [];
}

export function findResult(store: Store, key: Digest, lookup: ManifestLookup): Digest | undefined {
  const entry = findMatching(
    manifestEntries(store, key).filter((e) => store.has(e.result)),
    lookup,
  );
  return entry?.result;
}

/** The first entry whose headers are all unchanged here (and whose shadowing paths are still empty). */
export function findMatching(entries: ManifestEntry[], lookup: ManifestLookup): ManifestEntry | undefined {
  return entries.find((entry) => entryDifferences(entry, lookup, 1).length === 0);
}

/** What differs between an entry and this compile's files, up to `limit` findings (explain.ts shows them). */
export function entryDifferences(entry: ManifestEntry, lookup: ManifestLookup, limit: number): string[] {
  const { cwd, hasher } = lookup;
  const found: string[] = [];
  if (entry.fileMacroPaths !== undefined && entry.fileMacroPaths !== lookup.macroPaths) {
    found.push(
      'a file uses __FILE__, which holds paths of another checkout there (-ffile-prefix-map can make them one)',
    );
    if (found.length >= limit) return found;
  }
  for (const path of entry.absent) {
    if (!exists(expandCwd(path, cwd))) continue;
    found.push(`${path} now exists (it would shadow a header)`);
    if (found.length >= limit) return found;
  }
  for (const [path, digest] of entry.includes) {
    const now = hasher.hash(expandCwd(path, cwd));
    if (now && now.digest === digest) continue;
    found.push(now ? `header ${path}: content differs` : `header ${path}: missing`);
    if (found.length >= limit) return found;
  }
  return found;
}

/**
 * Adds an entry (newest first) and returns the key's entries. An entry is its header state: one with the same
 * headers and absent paths is replaced; one with other headers stays, even when it made the same object (the
 * narrow and wide builds of ncurses, one tree, a generated config header switching between two contents: each
 * state must keep its entry, or every rebuild replaces the other's and misses).
 */
export function recordEntry(store: Store, key: Digest, entry: ManifestEntry): ManifestEntry[] {
  const old = manifestEntries(store, key);
  const state = (e: ManifestEntry) => JSON.stringify([e.includes, [...e.absent].sort(), e.fileMacroPaths ?? null]);
  const mine = state(entry);
  const entries = [entry, ...old.filter((e) => state(e) !== mine)].slice(0, MAX_ENTRIES);
  store.refs.set(NS, key, entry.result, { entries });
  return entries;
}

/**
 * Paths where a header with the same name would have been found first: the source's own directory (for
 * quoted includes) and every include directory searched before the one the header came from.
 */
export function shadowCandidates(include: string, source: string, includeDirs: string[]): string[] {
  if (isAbsolute(include) && !includeDirs.some((d) => isAbsolute(d))) return [];
  const candidates: string[] = [];
  const sourceDir = dirname(source);
  const dirs = [sourceDir, ...includeDirs];
  for (let k = 0; k < dirs.length; k++) {
    const dir = (dirs[k] as string).replace(/\/+$/, '') || '.';
    const prefix = dir === '.' ? '' : `${dir}/`;
    if (prefix && !include.startsWith(prefix)) continue;
    if (!prefix && include.includes('/')) continue;
    const rel = include.slice(prefix.length);
    for (const earlier of dirs.slice(0, k)) candidates.push(join(earlier, rel));
    break;
  }
  return candidates.filter((c) => c !== include);
}

function exists(path: string): boolean {
  try {
    return statSync(path, { throwIfNoEntry: false }) !== undefined;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return false;
    throw err;
  }
}
