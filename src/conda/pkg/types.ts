/** The shapes inside a `.conda` (format v2) that accel writes and reads. Field names are conda's own. */

type NoArch = 'generic' | 'python';

/** `info/index.json`: what a channel's repodata.json lists for the package. */
export interface IndexJson {
  name: string;
  version: string;
  build: string;
  build_number: number;
  depends: string[];
  constrains: string[];
  subdir: string;
  /** Milliseconds since the epoch; also the mtime of every member, so a package is reproducible. */
  timestamp: number;
  license?: string;
  noarch?: NoArch;
  arch?: string | null;
  platform?: string | null;
}

/** What the caller gives: the derived fields (arch, platform) are filled in by the writer. */
export type IndexInput = Omit<IndexJson, 'arch' | 'platform' | 'constrains' | 'depends'> & {
  depends?: string[];
  constrains?: string[];
};

type FileMode = 'text' | 'binary';

/** One entry of `info/paths.json`. Softlinks carry no hash: their target may lie outside the package. */
export interface PathEntry {
  _path: string;
  path_type: 'hardlink' | 'softlink';
  sha256?: string;
  size_in_bytes?: number;
  prefix_placeholder?: string;
  file_mode?: FileMode;
}

export interface PathsJson {
  paths: PathEntry[];
  paths_version: 1;
}

export interface PackageMetadata {
  conda_pkg_format_version: number;
}

/** `<name>-<version>-<build>`: the file name of a package without `.conda`, and of its inner tarballs. */
export function packageStem(index: Pick<IndexJson, 'name' | 'version' | 'build'>): string {
  return `${index.name}-${index.version}-${index.build}`;
}

/** JSON with keys sorted at every level and two-space indentation, as conda-build writes info files. */
export function stableJson(value: unknown): string {
  return JSON.stringify(sortKeys(value), null, 2);
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) {
    const v = (value as Record<string, unknown>)[key];
    if (v !== undefined) out[key] = sortKeys(v);
  }
  return out;
}

/** A conda subdir name: `noarch` or `<os>-<arch>` (it becomes a directory name in a channel). */
export const SUBDIR_RE = /^(noarch|[a-z0-9]+-[a-z0-9_]+)$/;
