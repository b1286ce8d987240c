import { mkdirSync, type Stats, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/**
 * `mkdir -p`: makes `path` and its missing parents and returns the first directory it made (undefined when
 * all existed), as Node's recursive mkdirSync does. That one retries forever when a parent exists but
 * refuses children (`--home /proc/x`: ENOENT under a directory that is there; 100 % CPU), so
 * accel never uses it: here each level is made once, and any error goes to the caller.
 */
export function makeDirs(path: string, options: { mode?: number } = {}): string | undefined {
  const target = resolve(path);
  const missing: string[] = [];
  for (let dir = target; ; dir = dirname(dir)) {
    let stat: Stats;
    try {
      stat = statSync(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || dirname(dir) === dir) throw err;
      missing.push(dir);
      continue;
    }
    // A file where the directory should be: mkdir names it (EEXIST); under a file, the child's mkdir fails ENOTDIR.
    if (dir === target && !stat.isDirectory()) mkdirSync(dir);
    break;
  }
  let first: string | undefined;
  for (const dir of missing.reverse()) {
    try {
      mkdirSync(dir, options.mode === undefined ? {} : { mode: options.mode });
      first ??= dir;
    } catch (err) {
      // Another process made it between our stat and our mkdir.
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || !statSync(dir).isDirectory()) throw err;
    }
  }
  return first;
}
