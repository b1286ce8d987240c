import Database from 'better-sqlite3';
import { errnoCode } from '../core/errors.ts';
import { nativeAddon } from '../core/native.ts';

/**
 * One daemon per home, held by the kernel: an exclusive fcntl lock on run/cc.lock, taken through SQLite (Node
 * has no flock, and better-sqlite3 is already loaded). The kernel drops the lock when its process dies, however
 * it dies, so a stale pid file or socket can never block a start, and a reused pid means nothing: nothing here
 * looks at pids. SQLite also sees its own other connections in this process, so two daemons in one process
 * exclude each other too.
 */
export interface DaemonLock {
  release(): void;
}

/** How long a start waits for the lock: long enough for `lockHeld`'s probe, too short to queue behind a daemon. */
const WAIT_MS = 500;

function open(path: string, home: string): Database.Database {
  const nativeBinding = nativeAddon('better_sqlite3', home);
  const db = new Database(path, nativeBinding ? { nativeBinding: nativeBinding as unknown as string } : {});
  return db;
}

/** Takes the lock, or returns undefined when another process (or connection) holds it. */
export function takeDaemonLock(path: string, home: string, waitMs = WAIT_MS): DaemonLock | undefined {
  const db = open(path, home);
  try {
    db.pragma(`busy_timeout = ${waitMs}`);
    // A rollback-journal database (never WAL): BEGIN EXCLUSIVE takes the file's exclusive lock at once, and
    // the transaction stays open for the daemon's life.
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

/** Whether a daemon holds (or is taking) the lock; the probe holds it only for an instant. */
export function lockHeld(path: string, home: string): boolean {
  const lock = takeDaemonLock(path, home, 0);
  lock?.release();
  return lock === undefined;
}
