import { readFileSync, statSync } from 'node:fs';
import type { Statement } from 'better-sqlite3';
import { errnoCode } from '../core/errors.ts';
import { type Digest, digestOf } from '../store/digest.ts';
import type { Store } from '../store/store.ts';

export interface FileHash {
  digest: Digest;
  /** Modified at or after the compile started: its content may not be what the compiler read. */
  tooNew: boolean;
  timeMacros: boolean;
}

const TIME_MACROS = /__(DATE|TIME|TIMESTAMP)__/;

/**
 * Content hashes of source and header files through a stat cache in the index: while a file's size,
 * mtime, ctime and inode are unchanged its hash is reused, so a warm lookup reads no header at all.
 */
export class FileHasher {
  readonly #get: Statement;
  readonly #put: Statement;
  readonly #startNs: bigint;

  constructor(store: Store, startNs: bigint) {
    this.#startNs = startNs;
    this.#get = store.statement(
      'SELECT size, mtime_ns, ctime_ns, ino, digest, time_macros FROM cc_stat WHERE path = ?',
    );
    this.#put = store.statement(
      `INSERT INTO cc_stat (path, size, mtime_ns, ctime_ns, ino, digest, time_macros) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (path) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns, ctime_ns = excluded.ctime_ns,
         ino = excluded.ino, digest = excluded.digest, time_macros = excluded.time_macros`,
    );
  }

  /** Undefined when the file does not exist. `path` must be absolute. */
  hash(path: string): FileHash | undefined {
    let st: import('node:fs').BigIntStats;
    try {
      st = statSync(path, { bigint: true });
    } catch (err) {
      if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return undefined;
      throw err;
    }
    const tooNew = st.mtimeNs >= this.#startNs || st.ctimeNs >= this.#startNs;
    const row = this.#get.get(path) as
      | { size: number; mtime_ns: string; ctime_ns: string; ino: string; digest: string; time_macros: number }
      | undefined;
    if (
      row &&
      !tooNew &&
      row.size === Number(st.size) &&
      row.mtime_ns === String(st.mtimeNs) &&
      row.ctime_ns === String(st.ctimeNs) &&
      row.ino === String(st.ino)
    ) {
      return { digest: row.digest as Digest, tooNew: false, timeMacros: row.time_macros === 1 };
    }
    const data = readFileSync(path);
    const digest = digestOf(data);
    const timeMacros = TIME_MACROS.test(data.toString('latin1'));
    // A file changing under us must not enter the cache with a hash of bytes the compiler may not have seen.
    if (!tooNew) {
      this.#put.run(
        path,
        Number(st.size),
        String(st.mtimeNs),
        String(st.ctimeNs),
        String(st.ino),
        digest,
        timeMacros ? 1 : 0,
      );
    }
    return { digest, tooNew, timeMacros };
  }
}
