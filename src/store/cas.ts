import { renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { AccelError, errnoCode } from '../core/errors.ts';
import type { StoreContext } from './context.ts';
import type { Digest } from './digest.ts';
import { blobPath } from './layout.ts';
import { makeDir } from './modes.ts';

export interface BlobInfo {
  digest: Digest;
  size: number;
  createdAt: number;
  lastAccess: number;
  pinned: boolean;
}

export interface PutOptions {
  /** When known, the content must hash to this; a mismatch stores nothing. */
  expected?: Digest;
  /** Pinned blobs are never evicted by gc. */
  pin?: boolean;
}

/** A read in flight: the bytes arrive through `stream`, which fails at the end if they do not hash to `digest`. */
export interface BlobReader {
  info: BlobInfo;
  stream: Readable;
}

export const HASH_BUFFER_SIZE = 1 << 20;

/**
 * A blob being written piece by piece, for callers that produce bytes over time (a download). The temp
 * file may be read while it grows (`path`, `size`); nothing is visible in the store until `commit`.
 */
export interface BlobWriter {
  readonly path: string;
  readonly size: number;
  write(chunk: Buffer): Promise<void>;
  /** fsyncs, checks `expected`, publishes the blob; the writer is closed either way. */
  commit(options?: PutOptions): Promise<BlobInfo>;
  /** Drops the temp file; safe to call after a failed commit or twice. */
  abort(): Promise<void>;
}

export interface BlobRow {
  digest: string;
  size: number;
  created_at: number;
  last_access: number;
  pinned: number;
}

export function toInfo(row: BlobRow): BlobInfo {
  return {
    digest: row.digest as Digest,
    size: row.size,
    createdAt: row.created_at,
    lastAccess: row.last_access,
    pinned: row.pinned !== 0,
  };
}

export function statBlob(ctx: StoreContext, digest: Digest): BlobInfo | undefined {
  const row = ctx.statements.get.get(digest) as BlobRow | undefined;
  return row && toInfo(row);
}

/** The error for bytes that do not match their digest, after quarantining the blob; undefined when they match. */
export function mismatch(ctx: StoreContext, row: BlobRow, actual: string, seen: number): AccelError | undefined {
  if (actual === row.digest && seen === row.size) return undefined;
  quarantineBlob(ctx, row.digest as Digest);
  return new AccelError(
    'ACCEL_STORE_CORRUPT',
    `blob ${row.digest} is corrupt on disk (read ${seen} of ${row.size} bytes hashing to ${actual}); it was quarantined`,
    { hint: 'run `accel store verify` to check the rest of the store; put the content again to restore it' },
  );
}

/**
 * What identifies a blob file's current bytes without reading them: size, inode, and the times any write or
 * chmod moves. A server that hashed a blob may trust it while this stays the same; a blob corrupted in place
 * (or replaced) changes it, and is hashed again before it is served.
 */
export function fingerprintOf(st: { size: number; ino: number; mtimeMs: number; ctimeMs: number }): string {
  return `${st.size}:${st.ino}:${st.mtimeMs}:${st.ctimeMs}`;
}

/** Quarantines a blob whose bytes were found not to match (by a reader that hashed them itself). */
export function quarantineCorrupt(ctx: StoreContext, digest: Digest): void {
  if (ctx.statements.get.get(digest)) quarantineBlob(ctx, digest);
}

/** Drops the index row of a blob whose file is gone. */
export function forget(ctx: StoreContext, digest: Digest): void {
  ctx.statements.delete.run(digest);
}

/** Moves a bad blob out of the content address (keeping it for inspection) and drops its row. */
export function quarantineBlob(ctx: StoreContext, digest: Digest, path = blobPath(ctx.layout, digest)): string {
  const dest = join(ctx.layout.quarantine, `${digest}.${ctx.now()}`);
  makeDir(ctx.layout.quarantine, ctx.modes.dir);
  try {
    renameSync(path, dest);
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') rmSync(path, { force: true });
  }
  forget(ctx, digest);
  return dest;
}
