import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { COMPILER_NAMES } from '../compiler/identity.ts';

/**
 * A directory whose gcc, g++, cc, c++, clang and clang++ run `accel cc -- <name>`: put it first on PATH and
 * any build uses the cache with no build-file edits. The wrapper skips this directory when it looks for the
 * real compiler, so it never calls itself. Scripts rather than links: they carry the store (--home), which a
 * link to the executable could not.
 */
export function masqueradePath(home: string): string {
  return join(home, 'masquerade');
}

export function writeMasqueradeDir(home: string, accel: string[]): string {
  const dir = masqueradePath(home);
  mkdirSync(dir, { recursive: true });
  const command = accel.map((a) => `"${a}"`).join(' ');
  for (const name of COMPILER_NAMES) {
    const path = join(dir, name);
    rmSync(path, { force: true });
    writeFileSync(path, `#!/bin/sh\nexec ${command} --home "${home}" cc -- ${name} "$@"\n`);
    chmodSync(path, 0o755);
  }
  return dir;
}
