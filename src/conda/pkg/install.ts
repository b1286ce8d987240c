import {
  chmodSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  realpathSync,
  renameSync,
  rmdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { makeDirs } from '../../core/dirs.ts';
import { AccelError, errnoCode, fsError } from '../../core/errors.ts';
import { readCondaPackage, verifyCondaPackage } from './read.ts';
import { replaceBinary, replaceText } from './relocate.ts';
import { packageStem } from './types.ts';

interface InstalledPackage {
  name: string;
  version: string;
  build: string;
  prefix: string;
  /** Paths written, relative to the prefix (conda-meta record included). */
  files: string[];
  /** Files whose placeholder was replaced with the target prefix. */
  relocated: number;
}

/**
 * Installs a `.conda` into `targetPrefix`: the package is read and verified, every file is written and
 * relocated in a staging directory inside the prefix, and only then moved into place. A failure at any
 * point removes what was moved and puts back what it replaced, so a package is installed whole or not at all.
 * A `conda-meta/<name>-<version>-<build>.json` record is written last, as conda does.
 */
export async function installCondaPackage(file: string, targetPrefix: string): Promise<InstalledPackage> {
  const pkg = await readCondaPackage(file);
  verifyCondaPackage(pkg);
  const prefix = resolve(targetPrefix);
  const target = Buffer.from(prefix, 'utf8');
  for (const entry of pkg.paths.paths) {
    const placeholder = entry.prefix_placeholder;
    if (entry.file_mode === 'binary' && placeholder !== undefined && target.length > Buffer.byteLength(placeholder)) {
      throw new AccelError(
        'ACCEL_CONDA_PACKAGE_PREFIX_TOO_LONG',
        `cannot install ${entry._path} of ${file} into ${prefix}: the prefix is ${target.length} bytes, longer than the ${Buffer.byteLength(placeholder)}-byte placeholder it replaces in a binary`,
        { hint: 'install into a shorter prefix, or rebuild the package with a longer (padded) build prefix' },
      );
    }
  }
  try {
    makeDirs(prefix);
  } catch (err) {
    throw fsError(err, 'creating', prefix);
  }
  const staging = mkdtempSync(join(prefix, '.accel-install-'));
  const moved = new Transaction(staging);
  try {
    const byName = new Map(pkg.pkg.map((m) => [m.name, m]));
    let relocated = 0;
    const files: string[] = [];
    for (const entry of pkg.paths.paths) {
      const member = byName.get(entry._path);
      if (!member) continue; // verifyCondaPackage guarantees it exists
      const staged = join(staging, 'new', entry._path);
      makeDirs(dirname(staged));
      if (member.type === 'symlink') symlinkSync(member.linkname ?? '', staged);
      else {
        let data = member.data;
        if (entry.prefix_placeholder !== undefined) {
          const placeholder = Buffer.from(entry.prefix_placeholder, 'utf8');
          data =
            entry.file_mode === 'binary'
              ? replaceBinary(data, placeholder, target)
              : replaceText(data, placeholder, target);
          relocated++;
        }
        writeFileSync(staged, data, { mode: member.mode });
        chmodSync(staged, member.mode);
      }
      files.push(entry._path);
    }
    const record = `conda-meta/${packageStem(pkg.index)}.json`;
    const stagedRecord = join(staging, 'new', record);
    makeDirs(dirname(stagedRecord));
    writeFileSync(stagedRecord, prefixRecord(pkg, files));
    for (const rel of files) moved.move(rel, prefix);
    moved.move(record, prefix); // last: a prefix lists the package only once its files are all there
    moved.commit();
    const { name, version, build } = pkg.index;
    return { name, version, build, prefix, files: [...files, record], relocated };
  } catch (err) {
    moved.rollback();
    throw err instanceof AccelError ? err : fsError(err, 'installing into', prefix);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/** Renames staged files into the prefix, remembering enough to undo it. */
class Transaction {
  private readonly staging: string;
  private readonly done: { dest: string; backup?: string }[] = [];
  private readonly madeDirs: string[] = [];

  constructor(staging: string) {
    this.staging = staging;
  }

  move(rel: string, prefix: string): void {
    const dest = join(prefix, rel);
    this.mkdirs(dirname(dest), prefix);
    // A symlink another package left in the prefix (lib -> /elsewhere) must not carry this file out of it.
    const parent = realpathSync(dirname(dest));
    const root = realpathSync(prefix);
    if (parent !== root && !parent.startsWith(`${root}/`)) {
      throw new AccelError(
        'ACCEL_CONDA_PACKAGE_UNSAFE_PATH',
        `${rel} would be written outside ${prefix} (through ${parent})`,
        {
          hint: 'a symlink already in the prefix points out of it; install into a fresh prefix',
        },
      );
    }
    let backup: string | undefined;
    if (exists(dest)) {
      // Another package's file (conda "clobbers" it too); kept until the install commits.
      backup = join(this.staging, 'old', rel);
      makeDirs(dirname(backup));
      renameSync(dest, backup);
    }
    try {
      renameSync(join(this.staging, 'new', rel), dest);
    } catch (err) {
      if (backup) renameSync(backup, dest);
      throw err;
    }
    this.done.push({ dest, backup });
  }

  commit(): void {
    this.done.length = 0;
  }

  rollback(): void {
    for (const { dest, backup } of this.done.reverse()) {
      rmSync(dest, { force: true });
      if (backup) renameSync(backup, dest);
    }
    for (const dir of this.madeDirs.reverse()) {
      try {
        rmdirSync(dir);
      } catch {
        // not empty: something else put files there meanwhile
      }
    }
  }

  private mkdirs(dir: string, prefix: string): void {
    if (dir === prefix || exists(dir)) return;
    this.mkdirs(dirname(dir), prefix);
    mkdirSync(dir);
    this.madeDirs.push(dir);
  }
}

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return false;
    throw err;
  }
}

/** conda's PrefixRecord, enough for conda, mamba and pixi to see the package as installed. */
function prefixRecord(pkg: Awaited<ReturnType<typeof readCondaPackage>>, files: string[]): string {
  const record = {
    ...pkg.index,
    fn: `${packageStem(pkg.index)}.conda`,
    md5: pkg.archive.md5,
    sha256: pkg.archive.sha256,
    size: pkg.archive.size,
    files,
    paths_data: pkg.paths,
    requested_spec: '',
  };
  return `${JSON.stringify(record, null, 2)}\n`;
}
