import { readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { isProcessAlive, tempOwner } from '../core/atomic-fs.ts';
import { errnoCode } from '../core/errors.ts';

/** A temp file older than this is abandoned even if a process with its pid exists (pids get reused). */
const MAX_TEMP_AGE_MS = 24 * 3600 * 1000;

/**
 * Removes writes that can never finish: temp files whose process is gone, or that are very old. Runs at
 * every store open, so it must cost next to nothing when tmp/ is empty (one readdir).
 */
export function sweepTmp(tmpDir: string, now: number): number {
  let removed = 0;
  for (const name of readdirSync(tmpDir)) {
    const owner = tempOwner(name);
    const path = join(tmpDir, name);
    if (owner !== undefined && owner !== process.pid && !isProcessAlive(owner)) {
      removed += remove(path);
    } else if (owner === undefined || now - mtimeOf(path) > MAX_TEMP_AGE_MS) {
      removed += remove(path);
    }
  }
  return removed;
}

function mtimeOf(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return Number.POSITIVE_INFINITY;
    throw err;
  }
}

function remove(path: string): number {
  rmSync(path, { force: true, recursive: true });
  return 1;
}
