import { closeSync, fstatSync, openSync } from 'node:fs';
import { setPriority } from 'node:os';
import { Command } from 'commander';
import { writeFileAtomic } from '../core/atomic-fs.ts';
import { AccelError } from '../core/errors.ts';
import type { Log } from '../core/log.ts';
import { createProgress, type Progress } from '../core/progress.ts';
import { formatSize, parseSize } from '../core/size.ts';
import { sweepFront } from '../mirror/front.ts';
import type { BlobInfo, PutOptions } from '../store/cas.ts';
import { type Digest, parseDigest } from '../store/digest.ts';
import { blobPath } from '../store/layout.ts';
import type { Store } from '../store/store.ts';
import { withStore } from './globals.ts';
import { dataResult } from './result.ts';
import type { Runner } from './runner.ts';

/** Blobs up to this size are read and verified in full before the first byte reaches stdout. */
const VERIFY_BEFORE_WRITE_MAX = 16 * 1024 * 1024;

export function storeCommand(runner: Runner): Command {
  const store = new Command('store').description('the content-addressed store that every subcommand shares');

  store
    .command('put')
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

  store
    .command('get')
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

  store
    .command('stat')
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

  for (const [name, pinned] of [
    ['pin', true],
    ['unpin', false],
  ] as const) {
    store
      .command(name)
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

  store
    .command('ls')
    .description('list refs (named pointers to blobs), optionally in one namespace')
    .option('--ns <namespace>', 'only this namespace (url, cc, tree, conda, apt-epoch, ...)')
    .action(
      runner.action(async (g, opts: { ns?: string }) => {
        const refs = await withStore(g, (s) => [...s.refs.list(opts.ns)]);
        return dataResult(refs, () =>
          refs.map((r) => `${r.ns}\t${r.key}\t${r.digest}\t${iso(r.updatedAt)}`).join('\n'),
        );
      }),
    );

  store
    .command('info')
    .description('show where the store is and how much it holds')
    .action(
      runner.action(async (g) => {
        const info = await withStore(g, (s) => s.info());
        return dataResult(info, () =>
          [
            `home:            ${info.home}`,
            `schema version:  ${info.schemaVersion}`,
            `blobs:           ${info.blobs}`,
            `size:            ${formatSize(info.bytes)} (${info.bytes} bytes)`,
            `pinned:          ${info.pinnedBlobs} blobs, ${formatSize(info.pinnedBytes)}`,
            `refs:            ${info.refs}`,
            `gc budget:       ${g.config.store.maxSize}`,
          ].join('\n'),
        );
      }),
    );

  store
    .command('gc')
    .description('evict least recently used, unpinned blobs until the store fits its budget')
    .option('--max-size <size>', 'budget such as 500M or 10G (default: config store.maxSize)')
    .action(
      runner.action(async (g, opts: { maxSize?: string }) => {
        const budget = parseSize(opts.maxSize ?? g.config.store.maxSize);
        const quiet = g.log.level === 'quiet';
        let progress: Progress | undefined;
        let shown = 0;
        const r = await withStore(g, (s) =>
          s.gc(budget, (done, total) => {
            progress ??= createProgress(total, 'gc: removing', { quiet });
            for (; shown < done; shown++) progress.tick();
            if (done >= total) progress.stop();
          }),
        );
        // The nginx front's links to evicted blobs (mirror config nginx) go with them.
        if (r.freed.blobs > 0) sweepFront(g.home);
        if (r.overBudget)
          g.log.warn(`pinned blobs (${formatSize(r.pinnedBytes)}) alone exceed the budget ${formatSize(budget)}`);
        return dataResult(r, () =>
          [
            `freed ${r.freed.blobs} blobs, ${formatSize(r.freed.bytes)}`,
            `store: ${r.after.blobs} blobs, ${formatSize(r.after.bytes)} of ${formatSize(budget)} budget`,
          ].join('\n'),
        );
      }),
    );

  store
    .command('verify')
    .description('rehash every blob; quarantine and list mismatches (exit 1 if any)')
    .option('--scrub', `a background pass beside running builds: lowest CPU priority, reads paced (${SCRUB_RATE}/s)`)
    .option('--rate <size>', 'read at most SIZE per second, e.g. 50M (default: unlimited, or the scrub pace)')
    .addHelpText('after', '\nFrom cron, weekly at low priority:\n  0 3 * * 0  accel store verify --scrub -q')
    .action(
      runner.action(async (g, opts: { scrub?: boolean; rate?: string }) => {
        const rate = opts.rate ?? (opts.scrub ? SCRUB_RATE : undefined);
        if (opts.scrub) lowerPriority(g.log);
        const bytesPerSecond = rate === undefined ? undefined : parseSize(rate);
        if (bytesPerSecond === 0) {
          throw new AccelError('ACCEL_USAGE_BAD_SIZE', '--rate must be more than 0', { hint: 'e.g. --rate 50M' });
        }
        const quiet = g.log.level === 'quiet';
        let progress: Progress | undefined;
        const r = await withStore(g, (s) =>
          s.verify({
            bytesPerSecond,
            onProgress: (done, total, bytes) => {
              progress ??= createProgress(total, 'verify', { quiet, withBytes: true });
              progress.bytes(bytes);
              progress.tick();
              if (done === total) progress.stop();
            },
          }),
        );
        const bad = r.corrupt.length + r.missing.length;
        const lines = [
          ...r.corrupt.map((c) => `corrupt ${c.digest} (quarantined to ${c.quarantinedTo})`),
          ...r.missing.map((d) => `missing ${d} (index row dropped)`),
          ...r.adopted.map((d) => `adopted ${d} (file had no index row)`),
          `checked ${r.checked} blobs, ${formatSize(r.bytes)} good; ${r.corrupt.length} corrupt, ${r.missing.length} missing`,
        ];
        return dataResult(r, () => lines.join('\n'), bad > 0 ? 1 : 0);
      }),
    );

  return store;
}

/** What `verify --scrub` reads per second unless --rate says otherwise: a few percent of a disk's bandwidth. */
const SCRUB_RATE = '32M';

/**
 * The lowest CPU priority (nice 19), so hashing yields to compiles. Best effort: a process that may not
 * change its priority still scrubs, paced.
 */
function lowerPriority(log: Log): void {
  try {
    setPriority(19);
  } catch (err) {
    log.debug(`could not lower the CPU priority: ${(err as Error).message}`);
  }
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
