import { chmodSync, statSync } from 'node:fs';
import { makeDirs } from '../core/dirs.ts';
import { errnoCode } from '../core/errors.ts';

/**
 * The permissions the store gives what it creates. Private (the default): only its user may list or read
 * it, since the index names every URL fetched and every file compiled. Shared (config `store.shared`): a
 * group of users reads and writes one store; directories are setgid so new entries keep the group, and the
 * index is group-writable because every user's put writes it.
 */
export interface StoreModes {
  shared: boolean;
  dir: number;
  /** Blobs are immutable: read-only, even for their owner (the creating descriptor may still write). */
  blob: number;
  /** index.db; SQLite gives -wal and -shm the same mode. */
  index: number;
}

export function storeModes(shared: boolean): StoreModes {
  return shared
    ? { shared, dir: 0o2770, blob: 0o440, index: 0o660 }
    : { shared, dir: 0o700, blob: 0o400, index: 0o600 };
}

/**
 * mkdir -p that gives what it creates exactly `mode`: mkdir alone applies the umask and drops the setgid
 * bit, which would leave a shared store's new directories closed to the group.
 */
export function makeDir(path: string, mode: number): void {
  if (makeDirs(path, { mode }) !== undefined) chmodSync(path, mode);
}

/** chmod a file or directory this user owns to `mode`; others' files and missing ones are left as they are. */
export function restrict(path: string, mode: number): void {
  try {
    const st = statSync(path);
    if (st.uid === process.getuid?.() && (st.mode & 0o7777) !== mode) chmodSync(path, mode);
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw err;
  }
}
