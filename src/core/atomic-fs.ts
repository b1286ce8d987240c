import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fsError } from './errors.ts';

/**
 * A temp file name that says who made it: `<pid>-<random>`. Sweepers use the pid to tell an abandoned write
 * (its process is gone) from one still in progress.
 */
export function tempName(prefix = ''): string {
  return `${prefix}${process.pid}-${randomBytes(6).toString('hex')}`;
}

/** The pid encoded in a name made by tempName, or undefined. */
export function tempOwner(name: string): number | undefined {
  const m = /(?:^|\.)(\d+)-[0-9a-f]{12}$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Streams `source` (through optional transforms) into `target` so that `target` either keeps its old content
 * or holds the complete new one: write a hidden temp file beside it, fsync, then rename over it.
 */
export async function writeFileAtomic(
  target: string,
  source: Readable,
  transforms: Transform[] = [],
  mode = 0o644,
): Promise<void> {
  const temp = join(dirname(target), tempName(`.${basename(target)}.`));
  try {
    await pipeline([source, ...transforms, createWriteStream(temp, { flags: 'wx', mode, flush: true })]);
    await rename(temp, target);
  } catch (err) {
    await rm(temp, { force: true });
    throw fsError(err, 'writing', target);
  }
}
