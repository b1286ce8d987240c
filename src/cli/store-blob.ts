import { closeSync, fstatSync, openSync } from 'node:fs';
import { Command } from 'commander';
import { writeFileAtomic } from '../core/atomic-fs.ts';
import { AccelError } from '../core/errors.ts';
import type { BlobInfo, PutOptions } from '../store/cas.ts';
import { type Digest, parseDigest } from '../store/digest.ts';
import { blobPath } from '../store/layout.ts';
import type { Store } from '../store/store.ts';
import { withStore } from './globals.ts';
import { dataResult } from './result.ts';
import type { Runner } from './runner.ts';

/** Blobs up to this size are read and verified in full before the first byte reaches stdout. */
const VERIFY_BEFORE_WRITE_MAX = 16 * 1024 * 1024;

/** `accel store put`: a file or stdin into the store, optionally pinned or checked against a digest. */
export function storePutCommand(runner: Runner): Command {
  return new Command('put')
    .description('store a file (or stdin with -) and print its sha256 digest')
    .argument('<file>', 'file to store, or - for standard input')
    .option('--pin', 'never evict this blob in gc')
    .option('--expect <digest>', 'fail, storing nothing, unless the content has this digest')
    .action(
      runner.action(async (g, file: string, opts: { pin?: boolean; expect?: string }) => {
        const options = {
          pin: opts.pin === true,
          expected: opts.expect === undefined ? undefined : parseDigest(opts.expect),
        };
        const info = await withStore(g, (s) => (file === '-' ? putStdin(s, options) : s.putFile(file, options)));
        return dataResult({ digest: info.digest, size: info.size }, () => `${info.digest}  ${file}`);
      }),
    );
}

/** `accel store get`: a blob to stdout, or atomically to a file. */
export function storeGetCommand(runner: Runner): Command {
  return new Command('get')
    .description('write a blob to stdout, or atomically to FILE with -o')
    .argument('<digest>', 'sha256 digest (64 hex, optionally sha256:-prefixed)')
    .option('-o, --output <file>', 'write to FILE (replaced only once the content is complete and verified)')
    .action(
      runner.action(async (g, text: string, opts: { output?: string }) => {
        const digest = parseDigest(text);
        if (opts.output !== undefined) {
          const output = opts.output;
          let info: BlobInfo | undefined;
          await withStore(g, (s) =>
            writeFileAtomic(output, async (fh) => {
              info = await s.copyTo(digest, async (chunk) => {
                await fh.write(chunk);
              });
              if (!info) throw unknownDigest(digest);
            }),
          );
          return dataResult({ digest, size: info?.size, output }, () => '');
        }
        return { kind: 'stream', write: (out) => withStore(g, (s) => copyToStdout(s, digest, out)) };
      }),
    );
}

/** `accel store stat`: what the index knows about one blob, and where its file is. */
export function storeStatCommand(runner: Runner): Command {
  return new Command('stat')
    .description('show what the index knows about a blob')
    .argument('<digest>')
    .action(
      runner.action(async (g, text: string) => {
        const digest = parseDigest(text);
        const { info, path } = await withStore(g, (s) => {
          const found = s.stat(digest);
          if (!found) throw unknownDigest(digest);
          return { info: found, path: blobPath(s.layout, digest) };
        });
        return dataResult({ ...info, path }, () => statText(info, path));
      }),
    );
}

/** `accel store pin` (pinned: true) and `accel store unpin`: whether gc may evict a blob. */
export function storePinCommand(runner: Runner, pinned: boolean): Command {
  return new Command(pinned ? 'pin' : 'unpin')
    .description(pinned ? 'keep a blob through every gc' : 'let gc evict a blob again')
    .argument('<digest>')
    .action(
      runner.action(async (g, text: string) => {
        const digest = parseDigest(text);
        const changed = await withStore(g, (s) => s.setPinned(digest, pinned));
        if (!changed) throw unknownDigest(digest);
        return dataResult({ digest, pinned }, () => `${digest}  ${pinned ? 'pinned' : 'unpinned'}`);
      }),
    );
}

/**
 * Small blobs are verified before any byte is written, so stdout never sees wrong bytes. Large ones stream
 * and are verified at the end: on a mismatch the command fails (exit 1) after the bytes went out, and says so.
 */
async function copyToStdout(store: Store, digest: Digest, out: NodeJS.WritableStream): Promise<void> {
  const size = store.stat(digest)?.size;
  if (size === undefined) throw unknownDigest(digest);
  if (size <= VERIFY_BEFORE_WRITE_MAX) {
    const chunks: Buffer[] = [];
    const info = await store.copyTo(digest, (chunk) => {
      chunks.push(Buffer.from(chunk));
    });
    if (!info) throw unknownDigest(digest);
    await writeAll(out, Buffer.concat(chunks));
    return;
  }
  try {
    // The sink awaits each write: copyTo reuses its buffer once the promise settles.
    const info = await store.copyTo(digest, (chunk) => writeAll(out, chunk));
    if (!info) throw unknownDigest(digest);
  } catch (err) {
    if (err instanceof AccelError && err.code === 'ACCEL_STORE_CORRUPT') {
      throw new AccelError(err.code, `${err.message}; the bytes already written to stdout are wrong, discard them`, {
        hint: err.hint,
      });
    }
    throw err;
  }
}

/**
 * Stdin is read through one reused buffer when it can be: a redirected file directly, a shell pipe through a
 * fresh blocking descriptor from /dev/stdin. A socket (what a Node parent passes) cannot be reopened and is
 * read as a stream, which lets memory grow further ahead of the GC.
 */
async function putStdin(store: Store, options: PutOptions): Promise<BlobInfo> {
  if (fstatSync(0).isFile()) return store.putFd(0, options);
  let fd: number;
  try {
    fd = openSync('/dev/stdin', 'r');
  } catch {
    return store.putStream(process.stdin, options);
  }
  try {
    return await store.putFd(fd, options);
  } finally {
    closeSync(fd);
  }
}

function writeAll(out: NodeJS.WritableStream, chunk: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    out.write(chunk, (err) => (err ? reject(err) : resolve()));
  });
}

function unknownDigest(digest: Digest): AccelError {
  return new AccelError('ACCEL_STORE_UNKNOWN_DIGEST', `the store has no blob ${digest}`, {
    hint: 'check the digest, or the store with --home / ACCEL_HOME; gc may have evicted it',
  });
}

function statText(info: BlobInfo, path: string): string {
  return [
    `digest:       ${info.digest}`,
    `size:         ${info.size}`,
    `pinned:       ${info.pinned ? 'yes' : 'no'}`,
    `created:      ${iso(info.createdAt)}`,
    `last access:  ${iso(info.lastAccess)}`,
    `path:         ${path}`,
  ].join('\n');
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
