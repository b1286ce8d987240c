import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  copyFileSync,
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  renameSync,
  rmdirSync,
  statSync,
} from 'node:fs';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { makeDirs } from '../../core/dirs.ts';
import { AccelError } from '../../core/errors.ts';
import { VERSION } from '../../core/version.ts';
import type { Digest } from '../../store/digest.ts';
import { blobPath } from '../../store/layout.ts';
import { REF_NS } from '../../store/namespaces.ts';
import type { Store } from '../../store/store.ts';
import type { Source } from '../record.ts';

const run = promisify(execFile);

interface FetchSourceOptions {
  store: Store;
  /** Upstream hosts allowed on private addresses (a local source server). */
  allow: readonly string[];
  stallMs: number;
  /** `--source NAME=FILE` and conda.sources: feedstock name or the URL's file name → a local archive. */
  overrides?: Readonly<Record<string, string>>;
  /** Whether an override named after the feedstock applies (its first source); others match by file name. */
  byFeedstock?: boolean;
}

/** A source taken from a local file instead of its URL: recorded in the package's about.json. */
export interface SourceOverride {
  url: string;
  file: string;
  sha256: string;
  /** The digest the recipe names, which the file need not match (a distribution's repack, a mirror copy). */
  recipe: string;
}

/** Refs from an md5 or sha1 pin to the sha256 of the blob it matched, so an md5-pinned rebuild is offline too. */
const WEAK_PIN_NS = REF_NS.condaSourcePin;

/**
 * The source archive's blob: a declared override (a local file used instead of the URL), or straight from the
 * store when its digest is there already (a rebuild, or offline), else downloaded through the store, which
 * checks the sha256 before the blob becomes visible. A recipe pinning only md5 or sha1 is checked after the
 * download: a blob that does not match is never bound to the pin (it stays an unreferenced blob for gc).
 */
export async function fetchSource(
  source: Source,
  what: string,
  options: FetchSourceOptions,
): Promise<{ digest: Digest; override?: SourceOverride }> {
  const { store } = options;
  const url = source.url;
  if (!url) {
    throw new AccelError('ACCEL_CONDA_SOURCE', `${what}: only url sources are built (git_url and path are not)`, {
      hint: 'point source/url at a release archive and pin its sha256',
    });
  }
  const pin = sourcePin(source);
  if (!pin) {
    throw new AccelError('ACCEL_CONDA_SOURCE_SHA256', `${what}: source ${url} has no sha256, sha1 or md5`, {
      hint: 'pin the archive with source/sha256: a build must not depend on whatever the URL serves today',
    });
  }
  const fileName = url.split('/').pop() ?? '';
  const local =
    options.overrides?.[fileName] ?? (options.byFeedstock === false ? undefined : options.overrides?.[what]);
  if (local !== undefined) {
    let info: Awaited<ReturnType<Store['putFile']>>;
    try {
      info = await store.putFile(local);
    } catch (err) {
      throw new AccelError(
        'ACCEL_CONDA_SOURCE_OVERRIDE',
        `${what}: cannot read the source override ${local}: ${(err as Error).message}`,
        {
          hint: 'fix the path given with --source or in conda.sources',
          cause: err,
        },
      );
    }
    // A local copy of the very archive the recipe pins is no override: nothing to warn about or record.
    const same =
      pin.kind === 'sha256'
        ? info.digest === pin.value
        : createHash(pin.kind)
            .update(readFileSync(blobPath(store.layout, info.digest)))
            .digest('hex') === pin.value;
    if (same) {
      if (pin.kind !== 'sha256') store.refs.set(WEAK_PIN_NS, `${pin.kind}:${pin.value}`, info.digest);
      return { digest: info.digest };
    }
    return {
      digest: info.digest,
      override: { url, file: local, sha256: info.digest, recipe: `${pin.kind}:${pin.value}` },
    };
  }
  if (pin.kind === 'sha256') {
    const expected = pin.value as Digest;
    if (store.has(expected) && store.stat(expected)) return { digest: expected };
    return { digest: await download(url, what, options, expected) };
  }
  const known = store.refs.get(WEAK_PIN_NS, `${pin.kind}:${pin.value}`);
  if (known && store.has(known.digest as Digest)) return { digest: known.digest as Digest };
  const digest = await download(url, what, options, undefined);
  const actual = createHash(pin.kind)
    .update(readFileSync(blobPath(store.layout, digest)))
    .digest('hex');
  if (actual !== pin.value) {
    throw new AccelError(
      'ACCEL_CONDA_SOURCE_SHA256',
      `${what}: ${url} does not match the recipe's ${pin.kind} (${pin.value}, got ${actual})`,
      { hint: `check source/${pin.kind} against the release; nothing was built` },
    );
  }
  store.refs.set(WEAK_PIN_NS, `${pin.kind}:${pin.value}`, digest);
  return { digest };
}

/** The strongest digest a source names. */
function sourcePin(source: Source): { kind: 'sha256' | 'sha1' | 'md5'; value: string } | null {
  const ok = (v: string | null, len: number) => v !== null && new RegExp(`^[0-9a-f]{${len}}$`).test(v.toLowerCase());
  if (ok(source.sha256, 64)) return { kind: 'sha256', value: (source.sha256 as string).toLowerCase() };
  if (source.sha256 !== null) return null;
  if (ok(source.sha1, 40)) return { kind: 'sha1', value: (source.sha1 as string).toLowerCase() };
  if (ok(source.md5, 32)) return { kind: 'md5', value: (source.md5 as string).toLowerCase() };
  return null;
}

async function download(url: string, what: string, options: FetchSourceOptions, expected: Digest | undefined) {
  const { store } = options;
  // Loaded on a miss only: a no-op rebuild never downloads, and should not pay for the HTTP client.
  const { Download } = await import('../../fetch/download.ts');
  const download = new Download(store, {
    candidates: [url],
    ...(expected ? { expected } : {}),
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
      hint: `the source is not in the store yet, so the upstream must be reachable once; or give a local copy with --source ${what}=FILE`,
      cause: err,
    });
  }
  if (!info) {
    const head = await download.head;
    const status = head.kind === 'status' ? ` (HTTP ${head.status})` : '';
    throw new AccelError('ACCEL_CONDA_SOURCE_FETCH', `${what}: cannot download ${url}${status}`, {
      hint: `check the URL in source/url, or give a local copy with --source ${what}=FILE`,
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
  makeDirs(tmp);
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
  makeDirs(dir);
  const only = top.length === 1 ? join(tmp, top[0] as string) : undefined;
  const from = only && statSync(only).isDirectory() ? only : tmp;
  for (const name of readdirSync(from)) renameSync(join(from, name), join(dir, name));
  if (from !== tmp) rmdirSync(from);
  rmdirSync(tmp);
}

/** A source kept as it was downloaded (a v1 `file_name`): copied into `dir` under that name, not unpacked. */
export async function placeSource(
  store: Store,
  digest: Digest,
  dir: string,
  name: string,
  what: string,
): Promise<void> {
  const to = join(dir, name);
  if (relative(dir, to).startsWith('..') || name.includes('/')) {
    throw new AccelError('ACCEL_CONDA_SOURCE', `${what}: source file_name ${name} must be a plain file name`);
  }
  makeDirs(dir);
  copyFileSync(blobPath(store.layout, digest), to);
  chmodSync(to, 0o644);
}

/** Applies the recipe's patches in order with `patch -p1` (conda-build tries -p0..; feedstocks use -p1). */
export async function applyPatches(recipeDir: string, patches: string[], srcDir: string, what: string): Promise<void> {
  // rattler-build (recipe.yaml) matches a patch's context more loosely than GNU patch's default fuzz of 2, and
  // conda-forge's v1 recipes rely on it (snappy 1.2.2's RTTI patch); conda-build's recipes get patch's default.
  const lenient = existsSync(join(recipeDir, 'recipe.yaml'));
  for (const p of patches) {
    const args = ['-p1', '--batch', '--forward', '-i', join(recipeDir, p)];
    // Tried first, so that a patch that does not apply leaves the source as it was (no half-applied hunks).
    let failure = await patchFails([...args, '--dry-run'], srcDir);
    let fuzz: string[] = [];
    if (failure && lenient && !(await patchFails([...args, '--fuzz=3', '--dry-run'], srcDir))) {
      failure = null;
      fuzz = ['--fuzz=3'];
    }
    if (!failure) failure = await patchFails([...args, ...fuzz], srcDir);
    if (failure) {
      throw new AccelError(
        'ACCEL_CONDA_PATCH',
        `${what}: patch ${p} does not apply: ${failure.out.split('\n').at(-1)}`,
        {
          hint: failure.missing ? 'install patch (apt-get install -y patch)' : undefined,
          cause: failure.err,
        },
      );
    }
  }
}

/** Runs patch; null when it succeeded, else what it said. */
async function patchFails(
  args: string[],
  cwd: string,
): Promise<{ out: string; missing: boolean; err: unknown } | null> {
  try {
    await run('patch', args, { cwd });
    return null;
  } catch (err) {
    const out = `${(err as { stdout?: string }).stdout ?? ''}${(err as { stderr?: string }).stderr ?? ''}`.trim();
    return { out, missing: (err as { code?: string }).code === 'ENOENT', err };
  }
}
