import Database from 'better-sqlite3';
import { errnoCode } from '../core/errors.ts';
import { nativeAddon } from '../core/native.ts';

/**
 * An exclusive lock held by the kernel: an fcntl lock on a small SQLite file, taken through SQLite (Node has no
 * flock, and better-sqlite3 is already loaded). The kernel drops it when its process dies, however it dies
 * (kill -9 included), so a stale lock can never block anyone, and no pid is ever looked at. SQLite also sees its
 * own other connections in this process, so two holders in one process exclude each other too.
 */
export interface FileLock {
  release(): void;
}

/** Takes the lock, waiting at most `waitMs`; undefined when another process (or connection) holds it. */
export function takeFileLock(path: string, home: string, waitMs: number): FileLock | undefined {
  const nativeBinding = nativeAddon('better_sqlite3', home);
  const db = new Database(path, nativeBinding ? { nativeBinding: nativeBinding as unknown as string } : {});
  try {
    db.pragma(`busy_timeout = ${waitMs}`);
    // A rollback-journal database (never WAL): BEGIN EXCLUSIVE takes the file's exclusive lock at once, and
    // the transaction stays open for as long as the lock is held.
    db.exec('BEGIN EXCLUSIVE');
  } catch (err) {
    db.close();
    if (errnoCode(err) === 'SQLITE_BUSY') return undefined;
    throw err;
  }
  return {
    release() {
      if (!db.open) return;
      db.exec('ROLLBACK');
      db.close();
    },
  };
}
