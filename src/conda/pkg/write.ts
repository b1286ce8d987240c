import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { writeFileAtomic } from '../../core/atomic-fs.ts';
import { makeDirs } from '../../core/dirs.ts';
import { AccelError, errnoCode, fsError } from '../../core/errors.ts';
import { DEFAULT_ZSTD_LEVEL, isSafeRelative, packTarZst, type TarMember } from './tar-zst.ts';
import { type IndexInput, type IndexJson, type PathEntry, type PathsJson, packageStem, stableJson } from './types.ts';
import { writeStoredZip } from './zip.ts';

interface WritePackageOptions {
  /** The directory the files were installed into (the build's $PREFIX). */
  prefix: string;
  /** Files to pack, relative to `prefix` (regular files and symlinks). */
  files: string[];
  index: IndexInput;
  about?: Record<string, unknown>;
  runExports?: Record<string, unknown>;
  /** Copied to `info/recipe/`. */
  recipeDir?: string;
  /** The build prefix string as it appears in file contents; long (padded) so binaries can be relocated. */
  placeholder: string;
  outDir: string;
  /** zstd level of the inner tarballs. */
  level?: number;
}

interface WrittenPackage {
  path: string;
  filename: string;
  size: number;
  sha256: string;
  md5: string;
  paths: PathEntry[];
}

const NAME_RE = /^[a-z0-9_][a-z0-9_.+-]*$/;
const PART_RE = /^[A-Za-z0-9_.+!*]+$/;

/**
 * Packs the listed files of `prefix` into `<outDir>/<name>-<version>-<build>.conda` (format v2). Files that
 * contain the placeholder are marked for relocation: text files get `file_mode: text`, files with a NUL
 * byte `binary`. Every member has the index timestamp as its mtime, owner 0 and a normalised mode, and all
 * lists are sorted, so the same inputs give the same bytes. The package appears complete or not at all.
 */
export async function writeCondaPackage(options: WritePackageOptions): Promise<WrittenPackage> {
  const index = checkIndex(options.index);
  if (options.placeholder === '') {
    throw new AccelError('ACCEL_CONDA_PACKAGE_BAD_INDEX', 'the prefix placeholder is empty', {
      hint: 'pass the build prefix (a long, padded path) as the placeholder',
    });
  }
  const prefix = resolve(options.prefix);
  const placeholder = Buffer.from(options.placeholder, 'utf8');
  const pkgMembers: TarMember[] = [];
  const paths: PathEntry[] = [];
  for (const rel of [...new Set(options.files)].sort()) {
    const { member, entry } = packFile(prefix, rel, placeholder, options.placeholder);
    pkgMembers.push(member);
    paths.push(entry);
  }
  const infoMembers = infoFiles(index, paths, options);
  const stem = packageStem(index);
  const level = options.level ?? DEFAULT_ZSTD_LEVEL;
  const pkgTar = await packTarZst(pkgMembers, index.timestamp, level);
  const infoTar = await packTarZst(infoMembers, index.timestamp, level);
  // rattler's order: metadata first, info last (a reader after index.json alone finds it at the end).
  const zip = writeStoredZip(
    [
      { name: 'metadata.json', data: Buffer.from(JSON.stringify({ conda_pkg_format_version: 2 })) },
      { name: `pkg-${stem}.tar.zst`, data: pkgTar },
      { name: `info-${stem}.tar.zst`, data: infoTar },
    ],
    index.timestamp,
  );
  const filename = `${stem}.conda`;
  const path = join(options.outDir, filename);
  try {
    makeDirs(options.outDir);
  } catch (err) {
    throw fsError(err, 'creating', options.outDir);
  }
  await writeFileAtomic(path, async (fh) => {
    await fh.writeFile(zip);
  });
  return {
    path,
    filename,
    size: zip.length,
    sha256: createHash('sha256').update(zip).digest('hex'),
    md5: createHash('md5').update(zip).digest('hex'),
    paths,
  };
}

function checkIndex(input: IndexInput): IndexJson {
  const bad = (what: string) =>
    new AccelError('ACCEL_CONDA_PACKAGE_BAD_INDEX', `package index: ${what}`, {
      hint: 'name is lowercase [a-z0-9_.+-]; version and build have no "-" or spaces; build_number is an integer',
    });
  if (!NAME_RE.test(input.name)) throw bad(`bad name '${input.name}'`);
  if (!PART_RE.test(input.version)) throw bad(`bad version '${input.version}'`);
  if (!PART_RE.test(input.build)) throw bad(`bad build string '${input.build}'`);
  if (!Number.isInteger(input.build_number) || input.build_number < 0) throw bad('build_number must be an integer ≥ 0');
  if (!Number.isInteger(input.timestamp) || input.timestamp < 0) throw bad('timestamp must be integer milliseconds');
  if (!/^[a-z0-9]+(-[a-z0-9_]+)?$/.test(input.subdir)) throw bad(`bad subdir '${input.subdir}'`);
  if (input.noarch !== undefined && input.subdir !== 'noarch') throw bad('a noarch package must have subdir noarch');
  const [platform, arch] = input.subdir === 'noarch' ? [null, null] : input.subdir.split('-');
  return {
    ...input,
    depends: input.depends ?? [],
    constrains: input.constrains ?? [],
    arch: arch === undefined ? null : arch === '64' ? 'x86_64' : arch,
    platform: platform ?? null,
  };
}

function packFile(
  prefix: string,
  rel: string,
  placeholder: Buffer,
  placeholderText: string,
): { member: TarMember; entry: PathEntry } {
  if (!isSafeRelative(rel) || /^(info|conda-meta)(\/|$)/.test(rel)) {
    throw new AccelError(
      'ACCEL_CONDA_PACKAGE_UNSAFE_PATH',
      `cannot pack '${rel}': not a relative path inside the prefix`,
      {
        hint: 'list files relative to the prefix, without "..", and not under info/ or conda-meta/ (conda reserves them)',
      },
    );
  }
  const abs = join(prefix, rel);
  let stat: ReturnType<typeof lstatSync>;
  try {
    stat = lstatSync(abs);
  } catch (err) {
    throw errnoCode(err) === 'ENOENT'
      ? new AccelError('ACCEL_CONDA_PACKAGE_MISSING_FILE', `listed file ${rel} is not in ${prefix}`, {
          hint: 'list only files the build installed into the prefix',
        })
      : fsError(err, 'reading', abs);
  }
  if (stat.isSymbolicLink()) {
    let target = readlinkSync(abs);
    // A link into the build prefix would dangle once installed elsewhere: make it relative.
    if (isAbsolute(target) && (target === prefix || target.startsWith(`${prefix}/`))) {
      target = relative(join(prefix, rel, '..'), target) || '.';
    }
    return {
      member: { name: rel, type: 'symlink', mode: 0o777, data: Buffer.alloc(0), linkname: target },
      entry: { _path: rel, path_type: 'softlink' },
    };
  }
  if (!stat.isFile()) {
    throw new AccelError('ACCEL_CONDA_PACKAGE_UNSUPPORTED_FILE', `cannot pack ${rel}: not a regular file or symlink`, {
      hint: 'list files, not directories; empty directories are not packaged',
    });
  }
  const data = readFileSync(abs);
  const entry: PathEntry = {
    _path: rel,
    path_type: 'hardlink',
    sha256: createHash('sha256').update(data).digest('hex'),
    size_in_bytes: data.length,
  };
  if (data.includes(placeholder)) {
    entry.prefix_placeholder = placeholderText;
    entry.file_mode = data.includes(0) ? 'binary' : 'text';
  }
  return { member: { name: rel, type: 'file', mode: stat.mode & 0o111 ? 0o755 : 0o644, data }, entry };
}

function infoFiles(index: IndexJson, paths: PathEntry[], options: WritePackageOptions): TarMember[] {
  const file = (name: string, text: string): TarMember => ({
    name: `info/${name}`,
    type: 'file',
    mode: 0o644,
    data: Buffer.from(text, 'utf8'),
  });
  const pathsJson: PathsJson = { paths, paths_version: 1 };
  const members = [
    file('index.json', stableJson(index)),
    file('paths.json', stableJson(pathsJson)),
    file('files', paths.map((p) => `${p._path}\n`).join('')),
    file('about.json', stableJson(options.about ?? {})),
    file('run_exports.json', stableJson(options.runExports ?? {})),
  ];
  const hasPrefix = paths.filter((p) => p.prefix_placeholder !== undefined);
  if (hasPrefix.length > 0) {
    // The pre-paths.json form, still read by old conda: `<placeholder> <mode> <path>`.
    members.push(
      file('has_prefix', hasPrefix.map((p) => `${p.prefix_placeholder} ${p.file_mode} ${p._path}\n`).join('')),
    );
  }
  if (options.recipeDir !== undefined) members.push(...recipeFiles(options.recipeDir));
  return members.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function recipeFiles(dir: string): TarMember[] {
  let entries: string[];
  try {
    entries = readdirSync(dir, { recursive: true, encoding: 'utf8' });
  } catch (err) {
    throw fsError(err, 'reading the recipe directory', dir);
  }
  const members: TarMember[] = [];
  for (const rel of entries) {
    const abs = join(dir, rel);
    const stat = lstatSync(abs);
    if (!stat.isFile()) continue;
    members.push({
      name: `info/recipe/${rel.split('\\').join('/')}`,
      type: 'file',
      mode: 0o644,
      data: readFileSync(abs),
    });
  }
  return members;
}
