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
interface Placement {
  channel: string;
  url?: (filename: string) => string;
  path: (sha256: string, filename: string) => string;
}

/** The records of one subdir's repodata.json bytes (`packages.conda` and `packages`). */
export function packagesOf(bytes: Buffer, subdir: string, where: Placement): ChannelPackage[] {
  let repodata: { packages?: object; 'packages.conda'?: object };
  try {
    repodata = JSON.parse(bytes.toString('utf8')) as typeof repodata;
  } catch (err) {
    throw new AccelError('ACCEL_CONDA_REPODATA', `${where.channel}/${subdir}/repodata.json is not JSON`, {
      hint: 'index the channel again (accel conda index), or check what the upstream serves',
      cause: err,
    });
  }
  const out: ChannelPackage[] = [];
  for (const [filename, r] of [
    ...Object.entries(repodata['packages.conda'] ?? {}),
    ...Object.entries(repodata.packages ?? {}),
  ]) {
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
