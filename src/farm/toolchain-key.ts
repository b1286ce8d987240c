import { createHash } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { compilerIdentity, compilerVersion } from '../compiler/compiler-identity.ts';
import { probeSearchDirs } from '../compiler/search-dirs.ts';
import type { Store } from '../store/store.ts';
import type { Toolchain } from './protocol.ts';

/**
 * The compiler's identity as far as a farm job depends on it. System headers are not shipped, so they are part
 * of it: the search dirs the compiler reports and the names and sizes of every file under them (contents
 * would take seconds to hash; a different distribution release changes sizes or names).
 */
export function toolchainOf(compilerPath: string): Toolchain {
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

/** toolchainOf(), computed once per compiler binary (path, size, mtime) and kept in the store's index. */
export async function cachedToolchain(store: Store, compilerPath: string): Promise<Toolchain> {
  const id = compilerIdentity(compilerPath);
  const key = `${basename(compilerPath)}:${id.path}:${id.size}:${id.mtimeMs}`;
  const known = store.refs.get('farm-toolchain', key)?.meta as Toolchain | undefined;
  if (known) return known;
  const toolchain = toolchainOf(compilerPath);
  const info = await store.putBuffer(Buffer.from(JSON.stringify(toolchain)));
  store.refs.set('farm-toolchain', key, info.digest, toolchain);
  return toolchain;
}
