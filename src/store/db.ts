import Database from 'better-sqlite3';
import { AccelError, errnoCode } from '../core/errors.ts';

export type Db = Database.Database;

/**
 * Schema migrations, applied in order; `PRAGMA user_version` holds how many ran. Append only: a shipped
 * migration never changes, a feature that needs a table adds the next one here.
 */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE blobs (
     digest      TEXT PRIMARY KEY,
     size        INTEGER NOT NULL,
     created_at  INTEGER NOT NULL,
     last_access INTEGER NOT NULL,
     pinned      INTEGER NOT NULL DEFAULT 0
   ) WITHOUT ROWID;
   CREATE INDEX blobs_lru ON blobs (pinned, last_access);
   CREATE TABLE refs (
     ns         TEXT NOT NULL,
     key        TEXT NOT NULL,
     digest     TEXT NOT NULL,
     meta       TEXT,
     updated_at INTEGER NOT NULL,
     PRIMARY KEY (ns, key)
   ) WITHOUT ROWID;
   CREATE INDEX refs_digest ON refs (digest);`,
  // 2: the compile cache's stat cache (path → content hash while size, times and inode stay the same) and
  // its counters (one row per counter, incremented in place by every wrapper process).
  `CREATE TABLE cc_stat (
     path     TEXT PRIMARY KEY,
     size     INTEGER NOT NULL,
     mtime_ns TEXT NOT NULL,
     ctime_ns TEXT NOT NULL,
     ino      TEXT NOT NULL,
     digest   TEXT NOT NULL,
     -- 1 when the file uses __DATE__, __TIME__ or __TIMESTAMP__: its compile output changes every time
     time_macros INTEGER NOT NULL DEFAULT 0
   ) WITHOUT ROWID;
   CREATE TABLE cc_counters (
     name  TEXT PRIMARY KEY,
     value INTEGER NOT NULL
   ) WITHOUT ROWID;`,
  // 3: what a size limit needs without scanning the blobs table. Totals kept by triggers in the same
  // transaction as every row change; holds (blobs an owner needs: an apt epoch's indexes, a job in flight)
  // that gc never evicts; and the eviction journal (rows gone, files not yet unlinked) a crashed gc leaves.
  `CREATE TABLE store_totals (
     id           INTEGER PRIMARY KEY CHECK (id = 1),
     blobs        INTEGER NOT NULL,
     bytes        INTEGER NOT NULL,
     pinned_bytes INTEGER NOT NULL
   );
   INSERT INTO store_totals
     SELECT 1, count(*), coalesce(sum(size), 0), coalesce(sum(size * pinned), 0) FROM blobs;
   CREATE TRIGGER blobs_total_insert AFTER INSERT ON blobs BEGIN
     UPDATE store_totals SET blobs = blobs + 1, bytes = bytes + NEW.size,
       pinned_bytes = pinned_bytes + NEW.size * NEW.pinned WHERE id = 1;
   END;
   CREATE TRIGGER blobs_total_delete AFTER DELETE ON blobs BEGIN
     UPDATE store_totals SET blobs = blobs - 1, bytes = bytes - OLD.size,
       pinned_bytes = pinned_bytes - OLD.size * OLD.pinned WHERE id = 1;
   END;
   CREATE TRIGGER blobs_total_update AFTER UPDATE OF size, pinned ON blobs BEGIN
     UPDATE store_totals SET bytes = bytes - OLD.size + NEW.size,
       pinned_bytes = pinned_bytes - OLD.size * OLD.pinned + NEW.size * NEW.pinned WHERE id = 1;
   END;
   CREATE TABLE holds (
     owner  TEXT NOT NULL,
     digest TEXT NOT NULL,
     PRIMARY KEY (owner, digest)
   ) WITHOUT ROWID;
   CREATE INDEX holds_digest ON holds (digest);
   CREATE TABLE evicting (
     digest TEXT PRIMARY KEY
   ) WITHOUT ROWID;`,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

export interface OpenDbOptions {
  /** A native binding object for better-sqlite3 (the single executable loads its own). */
  nativeBinding?: object;
}

/**
 * Opens the index with the settings every process must share: WAL so readers never wait for writers, a
 * busy timeout so 32 concurrent `accel cc` processes queue instead of failing with SQLITE_BUSY.
 */
export function openDb(file: string, options: OpenDbOptions = {}): Db {
  let db: Db;
  try {
    db = new Database(file, options.nativeBinding ? { nativeBinding: options.nativeBinding as unknown as string } : {});
  } catch (err) {
    throw new AccelError('ACCEL_STORE_OPEN', `cannot open the store index ${file}: ${(err as Error).message}`, {
      hint: 'check that ACCEL_HOME is a writable directory on a local disk',
      cause: err,
    });
  }
  try {
    db.pragma('busy_timeout = 30000');
    retryBusy(() => {
      if (db.pragma('journal_mode', { simple: true }) !== 'wal') db.pragma('journal_mode = WAL');
    });
    db.pragma('synchronous = NORMAL');
    retryBusy(() => migrate(db, file));
  } catch (err) {
    db.close();
    if (errnoCode(err)?.startsWith('SQLITE_READONLY') || errnoCode(err) === 'SQLITE_CANTOPEN') {
      throw new AccelError('ACCEL_STORE_NOT_WRITABLE', `the store index ${file} is not writable`, {
        hint: 'check the permissions of ACCEL_HOME, or choose another store with --home DIR',
        cause: err,
      });
    }
    throw err;
  }
  return db;
}

const BUSY_RETRY_MS = 30_000;

/**
 * Runs `fn` again while SQLite answers SQLITE_BUSY without having waited. Switching a new index to WAL
 * takes an exclusive lock, and SQLite skips the busy handler where waiting could deadlock (a connection
 * that already reads asking to write), so 32 `accel cc` processes opening a fresh store at once can see
 * "database is locked" at once. Sleeps a few milliseconds between tries, up to the busy timeout.
 */
function retryBusy<T>(fn: () => T): T {
  const deadline = Date.now() + BUSY_RETRY_MS;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let attempt = 0; ; attempt++) {
    try {
      return fn();
    } catch (err) {
      if (!errnoCode(err)?.startsWith('SQLITE_BUSY') || Date.now() >= deadline) throw err;
      Atomics.wait(pause, 0, 0, Math.min(5 + attempt * 5, 100) + Math.random() * 10);
    }
  }
}

function migrate(db: Db, file: string): void {
  const current = () => db.pragma('user_version', { simple: true }) as number;
  if (current() === SCHEMA_VERSION) return;
  // Re-read inside the write transaction: another process may have migrated while we waited for the lock.
  db.transaction(() => {
    const version = current();
    if (version > SCHEMA_VERSION) {
      throw new AccelError(
        'ACCEL_STORE_SCHEMA_NEWER',
        `the store index ${file} has schema version ${version}; this accel knows up to ${SCHEMA_VERSION}`,
        { hint: 'use a newer accel with this store, or another store with --home DIR' },
      );
    }
    for (let v = version; v < SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v] as string);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}

/**
 * The index's own "disk full" (SQLITE_FULL: the WAL could not grow) as the same error a full disk gives a
 * blob write; other errors pass through.
 */
export function indexWriteError(err: unknown, file: string): unknown {
  if (errnoCode(err) !== 'SQLITE_FULL') return err;
  return new AccelError('ACCEL_FS_NO_SPACE', `no space left while writing the store index ${file}`, {
    hint: 'free disk space, or shrink the store with `accel store gc --max-size SIZE`',
    cause: err,
  });
}

/** The SQLite library's version, from an in-memory database. */
export function sqliteVersion(options: OpenDbOptions = {}): string {
  const db = new Database(
    ':memory:',
    options.nativeBinding ? { nativeBinding: options.nativeBinding as unknown as string } : {},
  );
  try {
    return db.prepare('SELECT sqlite_version() AS v').pluck().get() as string;
  } finally {
    db.close();
  }
}

/** Runs `fn` in a short BEGIN IMMEDIATE transaction: take the write lock up front so it never upgrades mid-way. */
export function writeTx<T>(db: Db, fn: () => T): T {
  return db.transaction(fn).immediate();
}
