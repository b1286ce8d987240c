import type { Statement } from 'better-sqlite3';
import type { Db } from './db.ts';

/*
 * The compile cache's own tables (store migration 2: cc_counters, cc_stat), behind typed operations: the store
 * owns its SQL, features never hold the database handle. Statements are prepared once per open store, so a
 * long-lived process (the cc daemon) does not spend its time preparing them.
 */

/** ccache-style counters, one row each, incremented in place so many wrapper processes never lose a count. */
export class Counters {
  readonly #bump: Statement;
  readonly #read: Statement;
  readonly #zero: Statement;
  readonly #tally: Statement;
  readonly #dropTally: Statement;

  constructor(db: Db) {
    this.#bump = db.prepare(
      'INSERT INTO cc_counters (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = value + excluded.value',
    );
    this.#read = db.prepare("SELECT name, value FROM cc_counters WHERE name NOT LIKE 'tally %' ORDER BY name");
    this.#zero = db.prepare('DELETE FROM cc_counters');
    this.#tally = db.prepare("SELECT name, value FROM cc_counters WHERE name LIKE 'tally ' || ? || ' %'");
    this.#dropTally = db.prepare("DELETE FROM cc_counters WHERE name LIKE 'tally ' || ? || ' %'");
  }

  bump(name: string, by = 1): void {
    this.#bump.run(name, by);
  }

  read(): Record<string, number> {
    const rows = this.#read.all() as { name: string; value: number }[];
    return Object.fromEntries(rows.map((r) => [r.name, r.value]));
  }

  zero(): void {
    this.#zero.run();
  }

  /**
   * A caller's own tally (`ACCEL_CC_TALLY` in a compile's environment: one conda build's compiles), counted
   * apart from the totals `read()` shows; `takeTally` returns it and removes it.
   */
  bumpTally(tag: string, what: string): void {
    this.#bump.run(`tally ${tag} ${what}`, 1);
  }

  takeTally(tag: string): Record<string, number> {
    const rows = this.#tally.all(tag) as { name: string; value: number }[];
    this.#dropTally.run(tag);
    return Object.fromEntries(rows.map((r) => [r.name.slice(`tally ${tag} `.length), r.value]));
  }
}

/** What the stat cache knows of a file: the stat fields it was hashed with, and the hash. */
export interface StatEntry {
  size: number;
  mtimeNs: string;
  ctimeNs: string;
  ino: string;
  digest: string;
  timeMacros: boolean;
  /** Whether it names `__FILE__` or the like; undefined in a row from before this was recorded. */
  fileMacros?: boolean;
}

/** The `time_macros` column's bits: __DATE__/__TIME__ seen, __FILE__ seen, and "scanned for __FILE__". */
const TIME_BIT = 1;
const FILE_BIT = 2;
const FILE_SCANNED_BIT = 4;

/** Content hashes of source files by path, valid while the file's size, times and inode are unchanged. */
export class StatCache {
  readonly #get: Statement;
  readonly #put: Statement;

  constructor(db: Db) {
    this.#get = db.prepare('SELECT size, mtime_ns, ctime_ns, ino, digest, time_macros FROM cc_stat WHERE path = ?');
    this.#put = db.prepare(
      `INSERT INTO cc_stat (path, size, mtime_ns, ctime_ns, ino, digest, time_macros) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (path) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns, ctime_ns = excluded.ctime_ns,
         ino = excluded.ino, digest = excluded.digest, time_macros = excluded.time_macros`,
    );
  }

  get(path: string): StatEntry | undefined {
    const row = this.#get.get(path) as
      | { size: number; mtime_ns: string; ctime_ns: string; ino: string; digest: string; time_macros: number }
      | undefined;
    return (
      row && {
        size: row.size,
        mtimeNs: row.mtime_ns,
        ctimeNs: row.ctime_ns,
        ino: row.ino,
        digest: row.digest,
        timeMacros: (row.time_macros & TIME_BIT) !== 0,
        fileMacros: (row.time_macros & FILE_SCANNED_BIT) !== 0 ? (row.time_macros & FILE_BIT) !== 0 : undefined,
      }
    );
  }

  put(path: string, entry: StatEntry): void {
    const macros =
      (entry.timeMacros ? TIME_BIT : 0) |
      (entry.fileMacros === undefined ? 0 : FILE_SCANNED_BIT | (entry.fileMacros ? FILE_BIT : 0));
    this.#put.run(path, entry.size, entry.mtimeNs, entry.ctimeNs, entry.ino, entry.digest, macros);
  }
}
