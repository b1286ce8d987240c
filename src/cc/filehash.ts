import { readFileSync, statSync } from 'node:fs';
import { errnoCode } from '../core/errors.ts';
import type { StatCache } from '../store/cc-tables.ts';
import { type Digest, digestOf } from '../store/digest.ts';
import type { Store } from '../store/store.ts';

export interface FileHash {
  digest: Digest;
  /** Modified at or after the compile started: its content may not be what the compiler read. */
  tooNew: boolean;
  timeMacros: boolean;
  /** Names a macro or builtin that expands to its own path (`__FILE__`, `__BASE_FILE__`, `__builtin_FILE`). */
  fileMacros: boolean;
}

const TIME_MACROS = /__(DATE|TIME|TIMESTAMP)__/;
const FILE_MACROS = /__FILE__|__BASE_FILE__|__builtin_FILE\b/;

/**
 * Content hashes of source and header files through a stat cache in the index: while a file's size,
 * mtime, ctime and inode are unchanged its hash is reused, so a warm lookup reads no header at all.
 */
export class FileHasher {
  readonly #cache: StatCache;
  readonly #startNs: bigint;
  readonly #memo: StatMemo | undefined;

  /** `memo`: a long-lived process (the daemon) keeps recent answers in memory in front of the index. */
  constructor(store: Store, startNs: bigint, memo?: StatMemo) {
    this.#startNs = startNs;
    this.#memo = memo;
    this.#cache = store.statCache;
  }

  /** Undefined when the file does not exist. `path` must be absolute. */
  hash(path: string): FileHash | undefined {
    let st: import('node:fs').BigIntStats | undefined;
    try {
      st = statSync(path, { bigint: true, throwIfNoEntry: false });
    } catch (err) {
      if (errnoCode(err) === 'ENOTDIR') return undefined;
      throw err;
    }
    if (!st) return undefined;
    const tooNew = st.mtimeNs >= this.#startNs || st.ctimeNs >= this.#startNs;
    // The same four fields the index row is checked against: any change to the file changes one of them.
    const stamp = `${st.size}:${st.mtimeNs}:${st.ctimeNs}:${st.ino}`;
    const memo = this.#memo?.get(path);
    if (memo && !tooNew && memo.stamp === stamp)
      return { digest: memo.digest, tooNew: false, timeMacros: memo.timeMacros, fileMacros: memo.fileMacros };
    const row = this.#cache.get(path);
    if (
      row &&
      !tooNew &&
      row.fileMacros !== undefined &&
      row.size === Number(st.size) &&
      row.mtimeNs === String(st.mtimeNs) &&
      row.ctimeNs === String(st.ctimeNs) &&
      row.ino === String(st.ino)
    ) {
      const hash = {
        digest: row.digest as Digest,
        tooNew: false,
        timeMacros: row.timeMacros,
        fileMacros: row.fileMacros,
      };
      this.#remember(path, stamp, hash);
      return hash;
    }
    const data = readFileSync(path);
    const digest = digestOf(data);
    const text = data.toString('latin1');
    const timeMacros = TIME_MACROS.test(text);
    const fileMacros = FILE_MACROS.test(text);
    // A file changing under us must not enter the cache with a hash of bytes the compiler may not have seen.
    if (!tooNew) {
      this.#remember(path, stamp, { digest, tooNew, timeMacros, fileMacros });
      this.#cache.put(path, {
        size: Number(st.size),
        mtimeNs: String(st.mtimeNs),
        ctimeNs: String(st.ctimeNs),
        ino: String(st.ino),
        digest,
        timeMacros,
        fileMacros,
      });
    }
    return { digest, tooNew, timeMacros, fileMacros };
  }

  /**
   * Whether a path holds nothing, or something from before the compile started, or something made or changed
   * since (`new`: the compiler may or may not have seen it).
   */
  presence(path: string): 'absent' | 'old' | 'new' {
    let st: import('node:fs').BigIntStats | undefined;
    try {
      st = statSync(path, { bigint: true, throwIfNoEntry: false });
    } catch (err) {
      if (errnoCode(err) === 'ENOTDIR') return 'absent';
      throw err;
    }
    if (!st) return 'absent';
    return st.mtimeNs >= this.#startNs || st.ctimeNs >= this.#startNs ? 'new' : 'old';
  }

  #remember(path: string, stamp: string, hash: FileHash): void {
    if (!this.#memo) return;
    // A crude bound: a daemon that has seen this many files starts over rather than growing without end.
    if (this.#memo.size >= MEMO_LIMIT) this.#memo.clear();
    this.#memo.set(path, { stamp, digest: hash.digest, timeMacros: hash.timeMacros, fileMacros: hash.fileMacros });
  }
}

/** Path → the stat stamp and hash last seen; owned by a long-lived process. */
export type StatMemo = Map<string, { stamp: string; digest: Digest; timeMacros: boolean; fileMacros: boolean }>;

const MEMO_LIMIT = 200_000;
