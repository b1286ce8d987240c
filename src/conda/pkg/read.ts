import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { AccelError, fsError } from '../../core/errors.ts';
import { readTarZst, type TarMember } from './tar-zst.ts';
import { type IndexJson, type PackageMetadata, type PathsJson, packageStem, SUBDIR_RE } from './types.ts';
import { readStoredZip } from './zip.ts';

interface CondaPackage {
  file: string;
  metadata: PackageMetadata;
  index: IndexJson;
  paths: PathsJson;
  /** Members of the info tarball (`info/...`). */
  info: TarMember[];
  /** Members of the pkg tarball (paths relative to the prefix). */
  pkg: TarMember[];
  /** md5, sha256 and size of the archive itself, as a channel lists them. */
  archive: { md5: string; sha256: string; size: number };
}

/** Reads a `.conda` completely; `checkCondaPackage` verifies it. Malformed archives throw AccelErrors. */
export async function readCondaPackage(file: string): Promise<CondaPackage> {
  return readPackage(file, true);
}

/** Reads only the metadata and the info tarball (what a channel index needs). `pkg` is empty. */
export async function readCondaInfo(file: string): Promise<CondaPackage> {
  return readPackage(file, false);
}

async function readPackage(file: string, withPkg: boolean): Promise<CondaPackage> {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (err) {
    throw fsError(err, 'reading', file);
  }
  const members = readStoredZip(buf, file);
  const names = members.map((m) => m.name);
  const stem = basename(file).replace(/\.conda$/, '');
  const expected = ['metadata.json', `info-${stem}.tar.zst`, `pkg-${stem}.tar.zst`];
  if (names.length !== 3 || !expected.every((n) => names.includes(n))) {
    throw fail('MEMBERS', file, `zip members are [${names.join(', ')}], expected ${expected.join(', ')}`);
  }
  const member = (name: string) => (members.find((m) => m.name === name) as { data: Buffer }).data;
  const metadata = parseJson(member('metadata.json'), file, 'metadata.json', 'METADATA') as PackageMetadata;
  if (metadata?.conda_pkg_format_version !== 2) {
    throw fail('METADATA', file, `metadata.json has conda_pkg_format_version ${metadata?.conda_pkg_format_version}`);
  }
  const info = await readTarZst(member(`info-${stem}.tar.zst`), `${file}: info-${stem}.tar.zst`);
  const pkg = withPkg ? await readTarZst(member(`pkg-${stem}.tar.zst`), `${file}: pkg-${stem}.tar.zst`) : [];
  const infoFile = (name: string) => {
    const m = info.find((x) => x.name === `info/${name}`);
    if (!m) throw fail('INFO', file, `info/${name} is missing`);
    return m.data;
  };
  const index = parseJson(infoFile('index.json'), file, 'info/index.json', 'INFO') as IndexJson;
  checkIndexFields(index, file);
  if (packageStem(index) !== stem) {
    throw fail('NAME', file, `index.json names ${packageStem(index)}, but the file is ${stem}.conda`);
  }
  const paths = parseJson(infoFile('paths.json'), file, 'info/paths.json', 'PATHS') as PathsJson;
  if (paths?.paths_version !== 1 || !Array.isArray(paths.paths)) {
    throw fail('PATHS', file, 'info/paths.json needs paths_version 1 and a paths list');
  }
  return {
    file,
    metadata,
    index,
    paths,
    info,
    pkg,
    archive: {
      md5: createHash('md5').update(buf).digest('hex'),
      sha256: createHash('sha256').update(buf).digest('hex'),
      size: buf.length,
    },
  };
}

interface PackageCheck {
  file: string;
  name: string;
  version: string;
  build: string;
  subdir: string;
  files: number;
  sha256: string;
}

/**
 * The format check: exactly the three zip members, metadata.json version 2, the index.json fields, and
 * paths.json agreeing with the pkg tarball entry for entry (type, size, sha256) and with info/files.
 */
export async function checkCondaPackage(file: string): Promise<PackageCheck> {
  const pkg = await readCondaPackage(file);
  verifyCondaPackage(pkg);
  const { name, version, build, subdir } = pkg.index;
  return { file, name, version, build, subdir, files: pkg.paths.paths.length, sha256: pkg.archive.sha256 };
}

/** The content half of the check, on a package already read: paths.json against the tarballs. */
export function verifyCondaPackage(pkg: CondaPackage): void {
  const { file } = pkg;
  const byName = new Map(pkg.pkg.map((m) => [m.name, m]));
  if (byName.size !== pkg.pkg.length) throw fail('PATHS', file, 'the pkg tarball holds a path twice');
  const links = new Set(pkg.pkg.filter((m) => m.type === 'symlink').map((m) => m.name));
  const listed = new Set<string>();
  for (const entry of pkg.paths.paths) {
    const where = `paths.json entry ${entry._path}`;
    if (listed.has(entry._path)) throw fail('PATHS', file, `${where} is listed twice`);
    listed.add(entry._path);
    // A file below one of the package's own symlinks would be written wherever that link points.
    const parts = entry._path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join('/');
      if (links.has(parent)) {
        throw new AccelError(
          'ACCEL_CONDA_PACKAGE_UNSAFE_PATH',
          `${file}: ${entry._path} lies below the symlink ${parent}`,
          {
            hint: 'a package must not place files through its own symlinks',
          },
        );
      }
    }
    const member = byName.get(entry._path);
    if (!member) throw fail('PATHS', file, `${where} is not in the pkg tarball`);
    if (entry.path_type === 'softlink') {
      if (member.type !== 'symlink') throw fail('PATHS', file, `${where} is a softlink, the tarball has a file`);
      continue;
    }
    if (entry.path_type !== 'hardlink') throw fail('PATHS', file, `${where} has path_type ${entry.path_type}`);
    if (member.type !== 'file') throw fail('PATHS', file, `${where} is a file, the tarball has a symlink`);
    if (entry.size_in_bytes !== member.data.length) {
      throw fail('PATHS', file, `${where}: size_in_bytes ${entry.size_in_bytes}, content ${member.data.length}`);
    }
    const digest = createHash('sha256').update(member.data).digest('hex');
    if (entry.sha256 !== digest) throw fail('PATHS', file, `${where}: sha256 ${entry.sha256}, content ${digest}`);
    if (entry.prefix_placeholder !== undefined && entry.file_mode !== 'text' && entry.file_mode !== 'binary') {
      throw fail('PATHS', file, `${where}: a prefix_placeholder needs file_mode text or binary`);
    }
  }
  const unlisted = pkg.pkg.filter((m) => !listed.has(m.name)).map((m) => m.name);
  if (unlisted.length > 0) throw fail('PATHS', file, `pkg tarball has files not in paths.json: ${unlisted.join(', ')}`);
  const files = pkg.info.find((m) => m.name === 'info/files');
  const fileList = files?.data.toString('utf8').split('\n').filter(Boolean).sort() ?? [];
  const pathList = [...listed].sort();
  if (fileList.join('\n') !== pathList.join('\n')) {
    throw fail('INFO', file, 'info/files does not list the paths.json paths');
  }
}

function checkIndexFields(index: IndexJson, file: string): void {
  if (typeof index !== 'object' || index === null) throw fail('INFO', file, 'info/index.json is not an object');
  for (const key of ['name', 'version', 'build', 'subdir'] as const) {
    if (typeof index[key] !== 'string' || index[key] === '')
      throw fail('INFO', file, `index.json ${key} is not a string`);
  }
  // It names a directory of the channel the package is added to: never a path.
  if (!SUBDIR_RE.test(index.subdir))
    throw fail('INFO', file, `index.json subdir '${index.subdir}' is not a subdir name`);
  if (!Number.isInteger(index.build_number)) throw fail('INFO', file, 'index.json build_number is not an integer');
  for (const key of ['depends', 'constrains'] as const) {
    const v = index[key];
    if (v !== undefined && (!Array.isArray(v) || v.some((d) => typeof d !== 'string'))) {
      throw fail('INFO', file, `index.json ${key} is not a list of strings`);
    }
  }
  if (index.timestamp !== undefined && typeof index.timestamp !== 'number') {
    throw fail('INFO', file, 'index.json timestamp is not a number');
  }
}

function parseJson(data: Buffer, file: string, what: string, code: string): unknown {
  try {
    return JSON.parse(data.toString('utf8'));
  } catch (err) {
    throw fail(code, file, `${what} is not valid JSON: ${(err as Error).message}`);
  }
}

function fail(what: string, file: string, message: string): AccelError {
  return new AccelError(`ACCEL_CONDA_PACKAGE_${what}`, `${file}: ${message}`, {
    hint: 'the package is malformed or damaged: build it again with accel, or check the tool that made it',
  });
}
