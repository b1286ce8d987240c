import {
  chmodSync,
  closeSync,
  createWriteStream,
  linkSync,
  openSync,
  read,
  readFileSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { copyFile, type FileHandle, open, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { type Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { tempName } from '../core/atomic-fs.ts';
import { AccelError, errnoCode, fsError } from '../core/errors.ts';
import { type BlobInfo, type BlobRow, type BlobWriter, HASH_BUFFER_SIZE, type PutOptions, toInfo } from './cas.ts';
import type { StoreContext } from './context.ts';
import { indexWriteError } from './db.ts';
import { type Digest, digestOf, newHasher } from './digest.ts';
import { blobPath } from './layout.ts';
import { makeDir } from './modes.ts';

/** Temp files are created owner-only and read-only (the creating descriptor may still write); commit sets the store's blob mode. */
const TEMP_MODE = 0o400;

export async function putStream(ctx: StoreContext, source: Readable, options: PutOptions = {}): Promise<BlobInfo> {
  const temp = join(ctx.layout.tmp, tempName());
  const hasher = newHasher();
  let size = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, done) {
      hasher.update(chunk);
      size += chunk.length;
      done(null, chunk);
    },
  });
  try {
    // flush: fsync before close, so the rename below never publishes a blob whose bytes are not on disk.
    await pipeline(source, tap, createWriteStream(temp, { flags: 'wx', mode: TEMP_MODE, flush: true }));
    return commit(ctx, temp, hasher.digest('hex') as Digest, size, options);
  } catch (err) {
    await rm(temp, { force: true });
    throw fsError(err, 'storing into', ctx.layout.home);
  }
}

export async function createBlobWriter(ctx: StoreContext): Promise<BlobWriter> {
  const path = join(ctx.layout.tmp, tempName());
  const fh = await open(path, 'wx', TEMP_MODE).catch((err: unknown) => {
    throw fsError(err, 'storing into', ctx.layout.home);
  });
  const hasher = newHasher();
  let size = 0;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await fh.close();
  };
  return {
    path,
    get size() {
      return size;
    },
    async write(chunk) {
      try {
        await writeAll(fh, chunk);
      } catch (err) {
        throw fsError(err, 'storing into', ctx.layout.home);
      }
      hasher.update(chunk);
      size += chunk.length;
    },
    async commit(options = {}) {
      try {
        await fh.sync();
        await close();
        return commit(ctx, path, hasher.digest('hex') as Digest, size, options);
      } catch (err) {
        await close();
        rmSync(path, { force: true });
        throw fsError(err, 'storing into', ctx.layout.home);
      }
    },
    async abort() {
      await close();
      rmSync(path, { force: true });
    },
  };
}

/**
 * Reads a file descriptor (stdin, typically) through one reused buffer, so memory stays flat however much
 * arrives; a Readable would allocate a buffer per chunk and let the heap grow far ahead of the GC.
 */
export async function putFd(ctx: StoreContext, fd: number, options: PutOptions = {}): Promise<BlobInfo> {
  const temp = join(ctx.layout.tmp, tempName());
  const hasher = newHasher();
  const buffer = Buffer.allocUnsafe(HASH_BUFFER_SIZE);
  let size = 0;
  try {
    const out = await open(temp, 'wx', TEMP_MODE);
    try {
      for (;;) {
        const bytesRead = await readFd(fd, buffer);
        if (bytesRead === 0) break;
        const chunk = buffer.subarray(0, bytesRead);
        hasher.update(chunk);
        await writeAll(out, chunk);
        size += bytesRead;
      }
      await out.sync();
    } finally {
      await out.close();
    }
    return commit(ctx, temp, hasher.digest('hex') as Digest, size, options);
  } catch (err) {
    await rm(temp, { force: true });
    throw fsError(err, 'storing into', ctx.layout.home);
  }
}

function readFd(fd: number, buffer: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    read(fd, buffer, 0, buffer.length, null, (err, bytesRead) => (err ? reject(err) : resolve(bytesRead)));
  });
}

/**
 * Copies the file into tmp/ first and hashes the copy, not the original: the copy is ours and cannot change
 * under us, and copy_file_range keeps the bytes out of user space.
 */
export async function putFile(ctx: StoreContext, file: string, options: PutOptions = {}): Promise<BlobInfo> {
  const st = await stat(file).catch((err: unknown) => {
    throw fsError(err, 'reading', file);
  });
  if (!st.isFile()) {
    throw new AccelError('ACCEL_STORE_NOT_A_FILE', `not a regular file: ${file}`, {
      hint: 'to store a stream, pipe it: `... | accel store put -`',
    });
  }
  const temp = join(ctx.layout.tmp, tempName());
  try {
    try {
      await copyFile(file, temp);
    } catch (err) {
      // Say which side failed: a permission or missing-file error is about the source, space is about the store.
      const code = errnoCode(err);
      throw code === 'ENOSPC' || code === 'EFBIG'
        ? fsError(err, 'storing into', ctx.layout.home)
        : fsError(err, 'reading', file);
    }
    const { digest, size } = await hashAndSync(temp);
    return commit(ctx, temp, digest, size, options);
  } catch (err) {
    await rm(temp, { force: true });
    throw fsError(err, 'storing into', ctx.layout.home);
  }
}

export async function putBuffer(ctx: StoreContext, data: Buffer, options: PutOptions = {}): Promise<BlobInfo> {
  const digest = digestOf(data);
  checkExpected(digest, options.expected);
  // Already stored: skip the write entirely (the common case when a compile result is stored twice).
  // Compared byte for byte (cheaper than hashing): a copy corrupted in place is rewritten, not trusted.
  const known = ctx.statements.get.get(digest) as BlobRow | undefined;
  if (known && sameBytes(blobPath(ctx.layout, digest), data)) return record(ctx, digest, data.length, options);
  const temp = join(ctx.layout.tmp, tempName());
  try {
    // Synchronous like readBlob: buffers are small (compile outputs), and each await costs a round trip.
    writeFileSync(temp, data, { flag: 'wx', mode: TEMP_MODE, flush: true });
    return commit(ctx, temp, digest, data.length, options);
  } catch (err) {
    rmSync(temp, { force: true });
    throw fsError(err, 'storing into', ctx.layout.home);
  }
}

function sameBytes(path: string, data: Buffer): boolean {
  try {
    return fileSize(path) === data.length && readFileSync(path).equals(data);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return false;
    throw err;
  }
}

/** Hashes a file through one reused buffer (per-chunk buffers make the heap grow with the file) and fsyncs it. */
async function hashAndSync(path: string): Promise<{ digest: Digest; size: number }> {
  const hasher = newHasher();
  const buffer = Buffer.allocUnsafe(HASH_BUFFER_SIZE);
  let size = 0;
  const fh = await open(path, 'r+');
  try {
    for (;;) {
      const { bytesRead } = await fh.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      hasher.update(buffer.subarray(0, bytesRead));
      size += bytesRead;
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  return { digest: hasher.digest('hex') as Digest, size };
}

function checkExpected(actual: Digest, expected: Digest | undefined): void {
  if (expected && actual !== expected) {
    throw new AccelError('ACCEL_STORE_DIGEST_MISMATCH', `content hashes to ${actual}, expected ${expected}`, {
      hint: 'the source changed or was corrupted in transit; nothing was stored',
    });
  }
}

/**
 * Moves a complete, synced temp file into its content address and records it. The rename-or-link is the
 * moment the blob becomes visible, so it comes after the digest check; the index row comes last, and a blob
 * file without a row is adopted by `verify`.
 */
function commit(ctx: StoreContext, temp: string, digest: Digest, size: number, options: PutOptions): BlobInfo {
  checkExpected(digest, options.expected);
  const final = blobPath(ctx.layout, digest);
  // Synchronous: these are a few metadata calls, cheaper inline than as thread-pool round trips.
  // The exact mode, whatever the umask (a shared store's blobs must stay readable to the group).
  chmodSync(temp, ctx.modes.blob);
  makeDir(join(final, '..'), ctx.modes.dir);
  // Room first: a new blob never takes the store past its limit (an existing one adds nothing).
  if (ctx.limit && !ctx.statements.get.get(digest)) ctx.limit.admit(size);
  let created = false;
  try {
    // link, not rename: it never replaces, so an existing blob wins and a reader of it is never disturbed.
    linkSync(temp, final);
    created = true;
    unlinkSync(temp);
  } catch (err) {
    if (errnoCode(err) !== 'EEXIST') throw err;
    // Invariant: a put returns only once the content address holds exactly the put's bytes. An existing file
    // is never trusted for it: metadata cannot show bit rot, so it is compared by size and then rehashed (a
    // duplicate put already read every byte once; putBuffer compares bytes instead). A truncated leftover or
    // a copy corrupted in place is replaced by the verified temp file, atomically: putting the right content
    // again repairs it, and a reader sees the old file or the new one.
    if (fileSize(final) !== size || fileDigest(final) !== digest) renameSync(temp, final);
    else unlinkSync(temp);
  }
  try {
    const info = record(ctx, digest, size, options);
    ctx.limit?.written();
    return info;
  } catch (err) {
    // The index could not take the row (a full disk): a blob this put created goes too, so the failed put
    // leaves nothing behind. A concurrent put of the same bytes that did record it then reads as a miss.
    if (created) rmSync(final, { force: true });
    throw err;
  }
}

/** sha256 of a file through one reused buffer (only on a duplicate put: the existing copy is checked). */
function fileDigest(path: string): string | undefined {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const hasher = newHasher();
    const buffer = Buffer.allocUnsafe(HASH_BUFFER_SIZE);
    for (;;) {
      const n = readSync(fd, buffer, 0, buffer.length, null);
      if (n === 0) break;
      hasher.update(buffer.subarray(0, n));
    }
    return hasher.digest('hex');
  } finally {
    closeSync(fd);
  }
}

function record(ctx: StoreContext, digest: Digest, size: number, options: PutOptions): BlobInfo {
  const now = ctx.now();
  try {
    ctx.statements.upsert.run({ digest, size, now, pinned: options.pin ? 1 : 0 });
  } catch (err) {
    throw indexWriteError(err, ctx.layout.index);
  }
  return toInfo(ctx.statements.get.get(digest) as BlobRow);
}

/**
 * Writes all of `chunk`. A write may take fewer bytes than offered (a disk filling up: 56,981 of 65,536,
 * then ENOSPC); the size recorded for the blob must be the size of the file, so the rest is written again
 * until it goes in or fails.
 */
async function writeAll(fh: FileHandle, chunk: Buffer): Promise<void> {
  for (let offset = 0; offset < chunk.length; ) {
    const { bytesWritten } = await fh.write(chunk, offset, chunk.length - offset);
    if (bytesWritten === 0) {
      throw Object.assign(new Error('no space left on device (a write took no bytes)'), { code: 'ENOSPC' });
    }
    offset += bytesWritten;
  }
}

function fileSize(path: string): number | undefined {
  try {
    return statSync(path).size;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}
