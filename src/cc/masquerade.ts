import { readlinkSync, renameSync, symlinkSync } from 'node:fs';
import { join, relative } from 'node:path';
import { tempName } from '../core/atomic-fs.ts';
import { COMPILER_NAMES } from '../core/compiler-names.ts';
import { makeDirs } from '../core/dirs.ts';
import { homeLayout } from '../core/home-layout.ts';

/**
 * A directory whose gcc, g++, cc, c++, clang and clang++ compile through accel: put it first on PATH and any
 * build uses the cache with no build-file edits. Each name links to the native client, `../bin/accel-cc`,
 * which talks to the cc daemon and finds its home from its own location. The wrapper skips this directory
 * when it looks for the real compiler, so it never calls itself.
 */
export function masqueradePath(home: string): string {
  return homeLayout(home).masquerade;
}

export function writeMasqueradeDir(home: string): string {
  const dir = masqueradePath(home);
  makeDirs(dir);
  const target = relative(dir, homeLayout(home).bin.client);
  for (const name of COMPILER_NAMES) {
    const path = join(dir, name);
    let current: string | undefined;
    try {
      current = readlinkSync(path);
    } catch {
      current = undefined; // missing, or an older accel's script: replace it
    }
    if (current === target) continue;
    // A new link renamed over the old name: a build running now sees one or the other, never neither.
    const temp = join(dir, tempName(`.${name}.`));
    symlinkSync(target, temp);
    renameSync(temp, path);
  }
  return dir;
}
