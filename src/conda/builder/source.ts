import { execFile } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readdirSync, readSync, renameSync, rmdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { AccelError } from '../../core/errors.ts';
import { VERSION } from '../../core/version.ts';
import type { Digest } from '../../store/digest.ts';
import { blobPath } from '../../store/layout.ts';
import type { Store } from '../../store/store.ts';
import type { Source } from '../record.ts';

const run = promisify(execFile);

export interface FetchSourceOptions {
  store: Store;
  /** Upstream hosts allowed on private addresses (a local source server). */
  allow: readonly string[];
  stallMs: number;
}

/**
 * The source archive's blob: straight from the store when its sha256 is there already (a rebuild, or
 * offline), else downloaded through the store, which checks the sha256 before the blob becomes visible.
 */
export async function fetchSource(source: Source, what: string, options: FetchSourceOptions): Promise<Digest> {
  const { store } = options;
  const url = source.url;
  if (!url) {
    throw new AccelError('ACCEL_CONDA_SOURCE', `${what}: only url sources are built (git_url and path are not)`, {
      hint: 'point source/url at a release archive and pin its sha256',
    });
  }
  const expected = source.sha256?.toLowerCase() as Digest | undefined;
  if (!expected || !/^[0-9a-f]{64}$/.test(expected)) {
    throw new AccelError('ACCEL_CONDA_SOURCE_SHA256', `${what}: source ${url} has no sha256`, {
      hint: 'pin the archive with source/sha256: a build must not depend on whatever the URL serves today',
    });
  }
  if (store.has(expected) && store.stat(expected)) return expected;
  // Loaded on a miss only: a no-op rebuild never downloads, and should not pay for the HTTP client.
  const { Download } = await import('../../fetch/download.ts');
  const download = new Download(store, {
    candidates: [url],
    expected,
    allow: options.allow,
    stallMs: options.stallMs,
    userAgent: `accel/${VERSION}`,
  });
  let info: Awaited<typeof download.done>;
  try {
    info = await download.done;
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ACCEL_STORE_DIGEST_MISMATCH') {
      throw new AccelError(
        'ACCEL_CONDA_SOURCE_SHA256',
        `${what}: ${url} does not match the recipe's sha256 (${(err as Error).message})`,
        { hint: 'check source/sha256 against the release; nothing was stored or built', cause: err },
      );
    }
    throw new AccelError('ACCEL_CONDA_SOURCE_FETCH', `${what}: cannot download ${url}: ${(err as Error).message}`, {
      hint: 'the source is not in the store yet, so the upstream must be reachable once',
      cause: err,
    });
  }
  if (!info) {
    const head = await download.head;
    const status = head.kind === 'status' ? ` (HTTP ${head.status})` : '';
    throw new AccelError('ACCEL_CONDA_SOURCE_FETCH', `${what}: cannot download ${url}${status}`, {
      hint: 'check the URL in source/url',
    });
  }
  return info.digest;
}

/** Which archive the bytes are, by magic number (URLs often lie about it). */
function archiveKind(file: string): 'tar' | 'zip' {
  const head = Buffer.alloc(4);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, head, 0, 4, 0);
  } finally {
    closeSync(fd);
  }
  return head.readUInt32LE(0) === 0x04034b50 ? 'zip' : 'tar';
}

/**
 * Unpacks a source archive into `dir` (tar.gz, tar.bz2, tar.xz through tar, zip through unzip); an archive
 * holding one top directory is unpacked into `dir` itself, as conda-build does.
 */
export async function extractSource(store: Store, digest: Digest, dir: string, what: string): Promise<void> {
  const file = blobPath(store.layout, digest);
  const tmp = `${dir}.unpack`;
  mkdirSync(tmp, { recursive: true });
  try {
    if (archiveKind(file) === 'zip') await run('unzip', ['-q', '-o', file, '-d', tmp]);
    else await run('tar', ['-xf', file, '-C', tmp, '--no-same-owner']);
  } catch (err) {
    const missing = (err as { code?: string }).code === 'ENOENT';
    throw new AccelError('ACCEL_CONDA_SOURCE_EXTRACT', `${what}: cannot unpack the source archive`, {
      hint: missing ? 'install unzip (apt-get install -y unzip)' : ((err as { stderr?: string }).stderr ?? '').trim(),
      cause: err,
    });
  }
  const top = readdirSync(tmp);
  mkdirSync(dir, { recursive: true });
  const only = top.length === 1 ? join(tmp, top[0] as string) : undefined;
  const from = only && statSync(only).isDirectory() ? only : tmp;
  for (const name of readdirSync(from)) renameSync(join(from, name), join(dir, name));
  if (from !== tmp) rmdirSync(from);
  rmdirSync(tmp);
}

/** Applies the recipe's patches in order with `patch -p1` (conda-build tries -p0..; feedstocks use -p1). */
export async function applyPatches(recipeDir: string, patches: string[], srcDir: string, what: string): Promise<void> {
  for (const p of patches) {
    try {
      await run('patch', ['-p1', '--batch', '--forward', '-i', join(recipeDir, p)], { cwd: srcDir });
    } catch (err) {
      const out = `${(err as { stdout?: string }).stdout ?? ''}${(err as { stderr?: string }).stderr ?? ''}`.trim();
      throw new AccelError('ACCEL_CONDA_PATCH', `${what}: patch ${p} does not apply: ${out.split('\n').at(-1)}`, {
        hint: (err as { code?: string }).code === 'ENOENT' ? 'install patch (apt-get install -y patch)' : undefined,
        cause: err,
      });
    }
  }
}
