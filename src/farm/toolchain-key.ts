import { cachedCompilerFacts, compilerFacts } from '../compiler/facts.ts';
import type { Store } from '../store/store.ts';
import type { Toolchain } from './protocol.ts';

/**
 * The compiler's identity as far as a farm job depends on it: the compiler's facts (name, version, target, and
 * its system headers, which are not shipped). A worker takes a job only when its own toolchain has the same key.
 */
export function toolchainOf(compilerPath: string): Toolchain {
  return compilerFacts(compilerPath);
}

/** toolchainOf(), computed once per compiler name and binary (path, size, mtime) and kept in the store's index. */
export function cachedToolchain(store: Store, compilerPath: string): Promise<Toolchain> {
  return cachedCompilerFacts(store, compilerPath);
}
