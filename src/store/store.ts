import type { FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Readable } from 'node:stream';
import { AccelError, errnoCode } from '../core/errors.ts';
import { type Log, silentLog } from '../core/log.ts';
import { nativeAddon } from '../core/native.ts';
import {
  type BlobInfo,
  type BlobReader,
  type BlobWriter,
  type PutOptions,
  quarantineCorrupt,
  statBlob,
} from './cas.ts';
import { copyBlob, openBlob, openBlobFile, readBlob, readBlobChecked, verifyOpenBlob } from './cas-read.ts';
import { createBlobWriter, putBuffer, putFd, putFile, putStream } from './cas-write.ts';
import { Counters, StatCache } from './cc-tables.ts';
import { prepareBlobStatements, type StoreContext } from './context.ts';
import { openDb, SCHEMA_VERSION } from './db.ts';
import type { Digest } from './digest.ts';
import { collectGarbage, type GcResult, readTotals, type StoreTotals } from './gc.ts';
import { processOwner, releaseHold, setHold } from './holds.ts';
import { type Layout, layoutOf } from './layout.ts';
import { SizeLimit, type SizeLimitOptions, type SizeLimitStatus } from './limit.ts';
import { makeDir, restrict, type StoreModes, storeModes } from './modes.ts';
import { Refs } from './refs.ts';
import { sweepTmp } from './sweep.ts';
import { type VerifyOptions, type VerifyResult, verifyStore } from './verify.ts';

export interface OpenStoreOptions {
  home: string;
  log?: Log;
  /** Clock in ms; tests pass their own to make LRU order deterministic. */
  now?: () => number;
  /** better-sqlite3's native binding, when the caller loaded it itself (the single executable does). */
  nativeBinding?: object;
  /**
   * A store a team shares through a group (config store.shared): group-writable directories that pass their
   * group on, a group-writable index. Otherwise the store is private to its user.
   */
  shared?: boolean;
  /** See {@link Store.verifyHits}; 'always' unless configured (config store.verifyHits). */
  verifyHits?: VerifyHits;
}

/** When a server hashes a blob it serves whole again: on every response, or when its file changed. */
export type VerifyHits = 'always' | 'changed';

export interface StoreInfo {
  home: string;
  schemaVersion: number;
  blobs: number;
  bytes: number;
  pinnedBlobs: number;
  pinnedBytes: number;
  refs: number;
}

/** The content-addressed store: immutable blobs under blobs/sha256/ and their SQLite index. */
export class Store {
  readonly refs: Refs;
  /** The compile cache's counters and stat cache: its tables, through typed operations (cc-tables.ts). */
  readonly counters: Counters;
  readonly statCache: StatCache;
  /**
   * 'always': a whole blob is hashed every time it is served, so bit rot that leaves the file's metadata
   * alone is caught too. 'changed': a server may skip the hash while the file's fingerprint (size, inode,
   * mtime, ctime) is the one it saw when it last hashed it. Range reads use the fingerprint either way.
   */
  readonly verifyHits: VerifyHits;
  readonly #ctx: StoreContext;

  private constructor(ctx: StoreContext, verifyHits: VerifyHits) {
    this.#ctx = ctx;
    this.verifyHits = verifyHits;
    this.refs = new Refs(ctx.db, ctx.now);
    this.counters = new Counters(ctx.db);
    this.statCache = new StatCache(ctx.db);
  }

  static open(options: OpenStoreOptions): Store {
    const layout = layoutOf(options.home);
    const now = options.now ?? Date.now;
    const modes = storeModes(options.shared === true);
    prepareDirs(layout, modes);
    const nativeBinding = options.nativeBinding ?? nativeAddon('better_sqlite3', options.home);
    const db = openDb(layout.index, { nativeBinding });
    // SQLite creates its files with the umask's modes; the index names every blob and URL the user fetched.
    for (const file of [layout.index, `${layout.index}-wal`, `${layout.index}-shm`]) restrict(file, modes.index);
    const log = options.log ?? silentLog;
    const swept = sweepTmp(layout.tmp, now());
    if (swept > 0) log.debug(`removed ${swept} abandoned temp file(s) from ${layout.tmp}`);
    return new Store(
      { layout, db, statements: prepareBlobStatements(db), now, log, modes },
      options.verifyHits ?? 'always',
    );
  }

  get home(): string {
    return this.#ctx.layout.home;
  }

  get layout(): Layout {
    return this.#ctx.layout;
  }

  putStream(source: Readable, options?: PutOptions): Promise<BlobInfo> {
    return putStream(this.#ctx, source, options);
  }

  putFile(file: string, options?: PutOptions): Promise<BlobInfo> {
    return putFile(this.#ctx, file, options);
  }

  putFd(fd: number, options?: PutOptions): Promise<BlobInfo> {
    return putFd(this.#ctx, fd, options);
  }

  putBuffer(data: Buffer, options?: PutOptions): Promise<BlobInfo> {
    return putBuffer(this.#ctx, data, options);
  }

  /** Starts a blob written piece by piece (downloads); see BlobWriter. */
  createWriter(): Promise<BlobWriter> {
    return createBlobWriter(this.#ctx);
  }

  /** Opens a blob's file unverified (range requests), or undefined on a miss; the caller closes it. */
  openFile(digest: Digest): Promise<{ info: BlobInfo; fh: FileHandle } | undefined> {
    return openBlobFile(this.#ctx, digest);
  }

  /** Reads a whole blob with its file's fingerprint, hashing it unless that fingerprint is `trusted`. */
  readChecked(digest: Digest, trusted: string | undefined): { data: Buffer; fingerprint: string } | undefined {
    return readBlobChecked(this.#ctx, digest, trusted);
  }

  /** Hashes an open blob file in full; false (and the blob quarantined) when it does not match. */
  verifyOpen(digest: Digest, fh: FileHandle): Promise<boolean> {
    return verifyOpenBlob(this.#ctx, digest, fh);
  }

  /** Quarantines a blob a reader found corrupt while hashing it itself. */
  quarantine(digest: Digest): void {
    quarantineCorrupt(this.#ctx, digest);
  }

  /** Opens a verified read stream, or undefined on a miss. */
  open(digest: Digest): Promise<BlobReader | undefined> {
    return openBlob(this.#ctx, digest);
  }

  /** Streams a blob into `sink` through one reused buffer, verifying it; undefined on a miss. */
  copyTo(digest: Digest, sink: (chunk: Buffer) => Promise<void> | void): Promise<BlobInfo | undefined> {
    return copyBlob(this.#ctx, digest, sink);
  }

  /** Reads and verifies a whole blob, or undefined on a miss. */
  read(digest: Digest, options?: { verify?: boolean }): Buffer | undefined {
    return readBlob(this.#ctx, digest, options);
  }

  /** True when the index has the blob. Cheap (no file access); a later open may still miss. */
  has(digest: Digest): boolean {
    return this.#ctx.statements.get.get(digest) !== undefined;
  }

  stat(digest: Digest): BlobInfo | undefined {
    return statBlob(this.#ctx, digest);
  }

  /** Sets or clears the pin; false when the blob is not in the store. */
  setPinned(digest: Digest, pinned: boolean): boolean {
    return this.#ctx.db.prepare('UPDATE blobs SET pinned = ? WHERE digest = ?').run(pinned ? 1 : 0, digest).changes > 0;
  }

  /** Evicts down to `budget` (waiting for a running gc first); `onProgress` follows the blobs removed. */
  gc(budget: number, onProgress?: (done: number, total: number) => void): GcResult {
    return collectGarbage(this.#ctx, budget, onProgress);
  }

  /**
   * Keeps the store under `maxBytes` while this process runs (a server's store; see limit.ts). The limit stays
   * until `close()` of the returned object, which the caller awaits before closing the store.
   */
  limitSize(options: SizeLimitOptions): SizeLimit {
    return new SizeLimit(this.#ctx, options);
  }

  /** The size limit's state when this process keeps one (a server), else undefined. */
  limitStatus(): SizeLimitStatus | undefined {
    return this.#ctx.limit instanceof SizeLimit ? this.#ctx.limit.status() : undefined;
  }

  /** The store's size from one row (the index keeps it in step with every change). */
  totals(): StoreTotals {
    return readTotals(this.#ctx);
  }

  /**
   * Keeps `digests` from gc for `owner` (replacing what that owner held before), until `release(owner)`. Owners
   * named by `processHold` end with the process.
   */
  hold(owner: string, digests: Iterable<Digest>): void {
    setHold(this.#ctx, owner, digests);
  }

  release(owner: string): void {
    releaseHold(this.#ctx, owner);
  }

  /** The owner name of a hold that ends with this process. */
  processHold(name: string): string {
    return processOwner(name);
  }

  verify(options?: VerifyOptions): Promise<VerifyResult> {
    return verifyStore(this.#ctx, options);
  }

  info(): StoreInfo {
    const db = this.#ctx.db;
    const blobs = db
      .prepare(
        `SELECT count(*) AS blobs, coalesce(sum(size), 0) AS bytes,
                coalesce(sum(pinned), 0) AS pinnedBlobs, coalesce(sum(size * pinned), 0) AS pinnedBytes FROM blobs`,
      )
      .get() as { blobs: number; bytes: number; pinnedBlobs: number; pinnedBytes: number };
    const refs = (db.prepare('SELECT count(*) AS n FROM refs').get() as { n: number }).n;
    return { home: this.home, schemaVersion: SCHEMA_VERSION, ...blobs, refs };
  }

  close(): void {
    this.#ctx.limit?.stop();
    this.#ctx.db.close();
  }
}

/**
 * The store is private to its user (0700) unless shared (2770: the group may read and write, new entries
 * keep the group). Existing directories of ours are brought to that mode; others' are left alone.
 */
function prepareDirs(layout: Layout, modes: StoreModes): void {
  try {
    for (const dir of [layout.home, dirname(layout.blobs), layout.blobs, layout.tmp]) {
      makeDir(dir, modes.dir);
      restrict(dir, modes.dir);
    }
  } catch (err) {
    const code = errnoCode(err);
    // ENOENT after makeDirs: a directory that refuses children (`--home /proc/x`).
    const refused = ['EACCES', 'EPERM', 'EROFS', 'ENOTDIR', 'EEXIST', 'ENOENT', 'ENOSPC', 'EDQUOT'];
    if (code && refused.includes(code)) {
      throw new AccelError('ACCEL_STORE_NOT_WRITABLE', `cannot create the store in ${layout.home} (${code})`, {
        hint: 'set ACCEL_HOME or --home to a writable directory',
        cause: err,
      });
    }
    throw err;
  }
}
