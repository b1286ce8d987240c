import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AccelError, errnoCode } from '../../core/errors.ts';

/** A package of a channel, as its subdir's repodata.json lists it, and where its file is. */
export interface ChannelPackage {
  subdir: string;
  filename: string;
  name: string;
  version: string;
  build: string;
  build_number: number;
  depends: string[];
  sha256: string;
  timestamp: number;
  /** The channel it comes from: a local directory, or an upstream's URL. */
  channel: string;
  /** The package file: in a local channel, or where an upstream's is put once fetched (UpstreamChannel). */
  path: string;
  /** An upstream package's URL; absent for a local channel's. */
  url?: string;
}

/** Where a record's file is: beside its repodata, or (upstream) a path that is only known from the digest. */
export interface Placement {
  channel: string;
  url?: (filename: string) => string;
  path: (sha256: string, filename: string) => string;
}

/** A subdir's repodata by package name: each record as the repodata has it, under its file name. */
export type RepodataIndex = Map<string, RepodataEntry[]>;

export interface RepodataEntry {
  filename: string;
  /** Which table it is in: `packages.conda` (.conda) or `packages` (.tar.bz2). */
  table: 'packages' | 'packages.conda';
  record: Record<string, unknown>;
}

/** Parses a subdir's repodata.json once into records by name (a solve then takes only the names it can reach). */
export function indexRepodata(bytes: Buffer, where: string): RepodataIndex {
  let repodata: { packages?: object; 'packages.conda'?: object };
  try {
    repodata = JSON.parse(bytes.toString('utf8')) as typeof repodata;
  } catch (err) {
    throw new AccelError('ACCEL_CONDA_REPODATA', `${where} is not JSON`, {
      hint: 'index the channel again (accel conda index), or check what the upstream serves',
      cause: err,
    });
  }
  const index: RepodataIndex = new Map();
  for (const table of ['packages.conda', 'packages'] as const) {
    for (const [filename, r] of Object.entries(repodata[table] ?? {})) {
      const record = r as Record<string, unknown>;
      const name = String(record.name);
      let list = index.get(name);
      if (!list) {
        list = [];
        index.set(name, list);
      }
      list.push({ filename, table, record });
    }
  }
  return index;
}

/** The records of one subdir's repodata.json bytes (`packages.conda` and `packages`). */
export function packagesOf(bytes: Buffer, subdir: string, where: Placement): ChannelPackage[] {
  return packagesOfIndex(indexRepodata(bytes, `${where.channel}/${subdir}/repodata.json`), subdir, where);
}

/** The records of a parsed subdir, with where each file is. */
export function packagesOfIndex(index: RepodataIndex, subdir: string, where: Placement): ChannelPackage[] {
  const out: ChannelPackage[] = [];
  for (const { filename, record: r } of [...index.values()].flat()) {
    const rec = r as Partial<ChannelPackage>;
    const sha256 = String(rec.sha256 ?? '');
    out.push({
      subdir,
      filename,
      name: String(rec.name),
      version: String(rec.version),
      build: String(rec.build),
      build_number: Number(rec.build_number ?? 0),
      depends: rec.depends ?? [],
      sha256,
      timestamp: Number(rec.timestamp ?? 0),
      channel: where.channel,
      path: where.path(sha256, filename),
      ...(where.url ? { url: where.url(filename) } : {}),
    });
  }
  return out;
}

/** The packages of `<channel>/<subdir>/repodata.json` for each subdir; a missing file is an empty subdir. */
export function readChannel(channel: string, subdirs: string[]): ChannelPackage[] {
  const out: ChannelPackage[] = [];
  for (const subdir of subdirs) {
    const bytes = localRepodata(channel, subdir);
    if (!bytes) continue;
    out.push(...packagesOf(bytes, subdir, { channel, path: (_sha, f) => join(channel, subdir, f) }));
  }
  return out;
}

/** A local channel's repodata.json for a subdir, or null when it has none. */
export function localRepodata(channel: string, subdir: string): Buffer | null {
  try {
    return readFileSync(join(channel, subdir, 'repodata.json'));
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' || errnoCode(err) === 'ENOTDIR') return null;
    throw err;
  }
}
