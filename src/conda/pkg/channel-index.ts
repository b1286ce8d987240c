import { createHash } from 'node:crypto';
import { copyFileSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { tempName, writeFileAtomic } from '../../core/atomic-fs.ts';
import { makeDirs } from '../../core/dirs.ts';
import { AccelError, errnoCode, fsError } from '../../core/errors.ts';
import { checkCondaPackage, readCondaInfo } from './read.ts';
import { type IndexJson, SUBDIR_RE, stableJson } from './types.ts';

/** A repodata record: the package's index.json plus the archive's checksums and size. */
type RepoRecord = IndexJson & { md5: string; sha256: string; size: number };

export interface RepoData {
  info: { subdir: string };
  /** `.tar.bz2` (v1) packages: accel writes none. */
  packages: Record<string, RepoRecord>;
  'packages.conda': Record<string, RepoRecord>;
  removed: string[];
  repodata_version: 1;
}

export interface ChannelIndex {
  channel: string;
  subdirs: { subdir: string; packages: number; repodata: string }[];
}

/** Each pass re-lists the channel; another writer adding packages meanwhile costs one more pass. */
const MAX_PASSES = 20;

/**
 * Writes `<subdir>/repodata.json` for every subdir of the channel, and `noarch/` always (clients ask for
 * it). Each file is replaced atomically, so a client never reads a half-written index. After writing, the
 * channel is listed again, and indexed again if it changed: packages are only ever added, so an index
 * written from a stale listing is always followed by its writer's own pass over the newer one.
 */
export async function indexChannel(channelDir: string): Promise<ChannelIndex> {
  const channel = resolve(channelDir);
  try {
    if (!statSync(channel).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
  } catch (err) {
    throw new AccelError('ACCEL_CONDA_CHANNEL_NOT_FOUND', `no channel directory at ${channel}`, {
      hint: 'create it, or add a package with `accel conda index <channel> <package.conda>`',
      cause: err,
    });
  }
  makeDirs(join(channel, 'noarch'));
  for (let pass = 0; pass < MAX_PASSES; pass++) {
    const listed = listChannel(channel);
    const subdirs: ChannelIndex['subdirs'] = [];
    for (const [subdir, files] of listed) {
      const repodata = await subdirRepoData(channel, subdir, files);
      const target = join(channel, subdir, 'repodata.json');
      await writeFileAtomic(target, async (fh) => {
        await fh.writeFile(`${stableJson(repodata)}\n`);
      });
      subdirs.push({ subdir, packages: files.length, repodata: target });
    }
    if (sameListing(listed, listChannel(channel))) return { channel, subdirs };
  }
  throw new AccelError('ACCEL_CONDA_CHANNEL_BUSY', `packages kept arriving in ${channel} while it was indexed`, {
    hint: 'run `accel conda index` again once the uploads are done',
  });
}

/**
 * Checks a package, copies it into `<channel>/<subdir>/` (temp file and rename: a client never sees a
 * partial package) and re-indexes. A different package under the same file name is refused: clients cache
 * packages by name forever.
 */
export async function addToChannel(
  channelDir: string,
  condaFile: string,
): Promise<{ path: string; subdir: string; added: boolean; index: ChannelIndex }> {
  const check = await checkCondaPackage(condaFile);
  const channel = resolve(channelDir);
  const dir = join(channel, check.subdir);
  const dest = join(dir, basename(condaFile));
  let added = true;
  try {
    makeDirs(dir);
    const existing = existingDigest(dest);
    if (existing === check.sha256) added = false;
    else if (existing !== undefined) {
      throw new AccelError(
        'ACCEL_CONDA_CHANNEL_CONFLICT',
        `${dest} already exists with other content (sha256 ${existing}, new ${check.sha256})`,
        { hint: 'packages are immutable once published: raise the build number, or remove the old file first' },
      );
    } else {
      const temp = join(dir, tempName(`.${basename(condaFile)}.`));
      try {
        copyFileSync(condaFile, temp);
        renameSync(temp, dest);
      } finally {
        rmSync(temp, { force: true });
      }
    }
  } catch (err) {
    throw err instanceof AccelError ? err : fsError(err, 'adding a package to', channel);
  }
  return { path: dest, subdir: check.subdir, added, index: await indexChannel(channel) };
}

function existingDigest(path: string): string | undefined {
  try {
    return createSha256(readFileSync(path));
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

function createSha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Subdir name → sorted `.conda` file names; noarch is always present. */
function listChannel(channel: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const entry of readdirSync(channel, { withFileTypes: true })) {
    if (!entry.isDirectory() || !SUBDIR_RE.test(entry.name)) continue;
    const files = readdirSync(join(channel, entry.name))
      .filter((f) => f.endsWith('.conda') && !f.startsWith('.'))
      .sort();
    out.set(entry.name, files);
  }
  if (!out.has('noarch')) out.set('noarch', []);
  return new Map([...out].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function sameListing(a: Map<string, string[]>, b: Map<string, string[]>): boolean {
  return JSON.stringify([...a]) === JSON.stringify([...b]);
}

/** Per-subdir memo of records by file stamp, so re-indexing reads only new or changed packages. */
const CACHE_FILE = '.accel-index-cache.json';
type IndexCache = Record<string, { size: number; mtimeMs: number; ino: number; record: RepoRecord }>;

async function subdirRepoData(channel: string, subdir: string, files: string[]): Promise<RepoData> {
  const dir = join(channel, subdir);
  const cache = readCache(join(dir, CACHE_FILE));
  const next: IndexCache = {};
  const records: Record<string, RepoRecord> = {};
  for (const name of files) {
    const file = join(dir, name);
    const stat = statSync(file);
    const hit = cache[name];
    if (hit && hit.size === stat.size && hit.mtimeMs === stat.mtimeMs && hit.ino === stat.ino) {
      records[name] = hit.record;
      next[name] = hit;
      continue;
    }
    const pkg = await readCondaInfo(file);
    if (pkg.index.subdir !== subdir) {
      throw new AccelError(
        'ACCEL_CONDA_CHANNEL_WRONG_SUBDIR',
        `${file} is a ${pkg.index.subdir} package in the ${subdir} directory`,
        { hint: `move it to ${join(channel, pkg.index.subdir)}/ and index again` },
      );
    }
    records[name] = { ...pkg.index, ...pkg.archive };
    next[name] = { size: stat.size, mtimeMs: stat.mtimeMs, ino: stat.ino, record: records[name] };
  }
  // The memo is only a shortcut: losing it, or a stale one, costs a re-read, never a wrong record.
  await writeFileAtomic(join(dir, CACHE_FILE), async (fh) => {
    await fh.writeFile(JSON.stringify(next));
  });
  return { info: { subdir }, packages: {}, 'packages.conda': records, removed: [], repodata_version: 1 };
}

function readCache(file: string): IndexCache {
  try {
    const value = JSON.parse(readFileSync(file, 'utf8'));
    return typeof value === 'object' && value !== null ? (value as IndexCache) : {};
  } catch {
    return {};
  }
}
