import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { REF_NS } from '../store/namespaces.ts';
import type { Store } from '../store/store.ts';
import { type CompilerIdentity, compilerIdentity } from './compiler-identity.ts';
import { type MsvcFlavor, msvcFlavor } from './msvc.ts';
import { probeShowIncludesPrefix, SHOW_INCLUDES_PREFIX } from './msvc-show-includes.ts';
import { probeSearchDirs } from './search-dirs.ts';

/**
 * What accel asks a compiler binary about itself, asked once per binary and kept in the store's index: a
 * compiler start costs milliseconds, and a build starts thousands of compiles with the same few compilers.
 * A fact is keyed by the binary's identity (real path, size, mtime), so an upgraded compiler is asked again.
 */

/** `-dumpversion` and `-dumpmachine`. */
export interface CompilerVersion {
  version: string;
  machine: string;
}

/**
 * A compiler as far as a compile's outputs depend on it when the compile runs on another machine: its name, version
 * and target, and a digest of the system headers it would read there (they are not shipped): the search dirs
 * the compiler reports and the names and sizes of every file under them (contents would take seconds to hash;
 * a different distribution release changes sizes or names).
 */
export interface CompilerFacts extends CompilerVersion {
  /** The name it was called by: `g++` and `gcc` may be one binary that searches different dirs. */
  compiler: string;
  /** sha256 over the compiler's system include dirs and their files' names and sizes. */
  system: string;
}

/**
 * compilerVersion() of the binary behind `identity`, under `cc-compiler` refs (meta: the CompilerVersion).
 * `flavor`: the MSVC driver it is called as; clang and clang-cl are one binary that answers differently.
 */
export function cachedCompilerVersion(
  store: Store,
  identity: CompilerIdentity,
  flavor?: MsvcFlavor,
): Promise<CompilerVersion> {
  const key = `${identityKey(identity)}${flavor ? `:${flavor}` : ''}`;
  return remembered(store, REF_NS.ccCompiler, key, () => compilerVersion(identity.path, flavor));
}

/**
 * `-dumpversion` and `-dumpmachine` (empty when the compiler does not answer). clang-cl ignores them unless
 * passed through (`/clang:-dumpversion`); cl.exe has neither and names its version in its banner.
 */
export function compilerVersion(compilerPath: string, flavor = msvcFlavor(compilerPath)): CompilerVersion {
  const run = (args: string[]) => spawnSync(compilerPath, args, { encoding: 'utf8', timeout: 10_000 });
  const ask = (flag: string) => run([flag]).stdout?.trim() ?? '';
  if (flavor === 'clang-cl') return { version: ask('/clang:-dumpversion'), machine: ask('/clang:-dumpmachine') };
  if (flavor === 'cl') {
    const banner = run([]).stderr?.split(/\r?\n/)[0]?.trim() ?? '';
    return { version: banner, machine: '' };
  }
  return { version: ask('-dumpversion'), machine: ask('-dumpmachine') };
}

/**
 * The prefix of an MSVC driver's `/showIncludes` lines: clang-cl's is fixed; cl.exe's follows its installation's
 * language, so it is probed once per binary (msvc-show-includes.ts) and kept under `cc-compiler` refs. Undefined
 * when the probe compile fails.
 */
export async function cachedShowIncludesPrefix(
  store: Store,
  compilerPath: string,
  options: { env: NodeJS.ProcessEnv; scratch: string },
): Promise<string | undefined> {
  if (msvcFlavor(compilerPath) === 'clang-cl') return SHOW_INCLUDES_PREFIX;
  const key = `${identityKey(compilerIdentity(compilerPath))}:showIncludes`;
  const known = store.refs.get(REF_NS.ccCompiler, key)?.meta as { prefix?: string } | undefined;
  if (known?.prefix) return known.prefix;
  const prefix = await probeShowIncludesPrefix(compilerPath, options);
  if (prefix === undefined) return undefined;
  const info = await store.putBuffer(Buffer.from(JSON.stringify({ prefix })));
  store.refs.set(REF_NS.ccCompiler, key, info.digest, { prefix });
  return prefix;
}

/** compilerFacts(), under `farm-toolchain` refs (meta: the CompilerFacts), keyed by name and identity. */
export function cachedCompilerFacts(store: Store, compilerPath: string): Promise<CompilerFacts> {
  const key = `${basename(compilerPath)}:${identityKey(compilerIdentity(compilerPath))}`;
  return remembered(store, REF_NS.farmToolchain, key, () => compilerFacts(compilerPath));
}

/** The facts, asked of the compiler by the path it is called by (a clang named for a target answers for it). */
export function compilerFacts(compilerPath: string): CompilerFacts {
  const name = basename(compilerPath);
  const { version, machine } = compilerVersion(compilerPath);
  const cxx = /\+\+|^c\+\+/.test(name);
  const dirs = probeSearchDirs(compilerPath, { language: cxx ? 'c++' : 'c' });
  const hash = createHash('sha256');
  for (const dir of dirs?.bracket ?? []) {
    // A framework directory is named, not listed: its headers sit in Name.framework/Headers, thousands of them.
    if (dirs?.frameworks.includes(dir)) {
      hash.update(`dir ${dir} (framework directory)\n`);
      continue;
    }
    hash.update(`dir ${dir}\n`);
    for (const [rel, size] of listing(dir)) hash.update(`${rel} ${size}\n`);
  }
  return { compiler: name, version, machine, system: hash.digest('hex') };
}

function identityKey(identity: CompilerIdentity): string {
  return `${identity.path}:${identity.size}:${identity.mtimeMs}`;
}

/**
 * A fact from the index, else computed and recorded (meta: the fact; blob: its JSON). Two processes that
 * compute the same fact at once both record it; the values are equal, so the last write loses nothing.
 */
async function remembered<T>(store: Store, ns: string, key: string, compute: () => T): Promise<T> {
  const known = store.refs.get(ns, key)?.meta as T | undefined;
  if (known) return known;
  const fact = compute();
  const info = await store.putBuffer(Buffer.from(JSON.stringify(fact)));
  store.refs.set(ns, key, info.digest, fact);
  return fact;
}

function listing(dir: string): [string, number][] {
  try {
    const out: [string, number][] = [];
    for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
      if (!e.isFile()) continue;
      const full = join(e.parentPath, e.name);
      out.push([full.slice(dir.length + 1), statSync(full).size]);
    }
    return out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  } catch {
    return [];
  }
}
