import { AccelError } from '../core/errors.ts';
import { type Dict, PY_BUILTINS } from './jinja-values.ts';

/** A conda subdir such as `linux-aarch64`, split into what selectors and compiler names need. */
export interface Platform {
  subdir: string;
  os: 'linux' | 'osx' | 'win';
  arch: string;
}

const SUBDIRS = [
  'linux-64',
  'linux-aarch64',
  'linux-ppc64le',
  'linux-s390x',
  'linux-armv7l',
  'linux-riscv64',
  'linux-32',
  'osx-64',
  'osx-arm64',
  'win-64',
  'win-32',
  'win-arm64',
];

export function parsePlatform(subdir: string): Platform {
  if (!SUBDIRS.includes(subdir)) {
    throw new AccelError('ACCEL_USAGE_PLATFORM', `unknown conda platform '${subdir}'`, {
      hint: `use one of ${SUBDIRS.join(', ')}`,
    });
  }
  const [os, arch] = subdir.split('-') as [Platform['os'], string];
  return { subdir, os, arch: arch === '64' ? 'x86_64' : arch === '32' ? 'x86' : arch };
}

/** The platform this process runs on, which is conda-build's default build (and target) platform. */
export function hostSubdir(): string {
  const arch = process.arch === 'x64' ? '64' : process.arch === 'arm64' ? 'aarch64' : process.arch;
  const os = process.platform === 'darwin' ? 'osx' : process.platform === 'win32' ? 'win' : 'linux';
  if (os === 'osx' && arch === 'aarch64') return 'osx-arm64';
  return `${os}-${arch}`;
}

/** Python's `3.11` (or `3.11.* *_cpython`) as the selector number `311`. */
function pyNumber(version: string | undefined): number | undefined {
  const m = version === undefined ? null : /^(\d+)\.(\d+)/.exec(version);
  return m ? Number(`${m[1]}${m[2]}`) : undefined;
}

/**
 * The names that line selectors and Jinja see for a target platform (conda-build's namespace): `linux`,
 * `aarch64`, `unix`, `x86_64`, `linux64`, `py` (311), `np`, `target_platform`, `build_platform`, plus every
 * variant value. Names not in here are false in selectors.
 */
export function platformNames(target: Platform, build: Platform, variant: Record<string, string>): Dict {
  const ns: Dict = { ...PY_BUILTINS, ...variant };
  const { os, arch } = target;
  ns.linux = os === 'linux';
  ns.osx = os === 'osx';
  ns.win = os === 'win';
  ns.unix = os !== 'win';
  for (const a of ['aarch64', 'ppc64le', 's390x', 'armv7l', 'riscv64', 'arm64']) ns[a] = arch === a;
  ns.x86_64 = arch === 'x86_64';
  ns.x86 = arch === 'x86_64' || arch === 'x86';
  ns.linux64 = target.subdir === 'linux-64';
  ns.linux32 = target.subdir === 'linux-32';
  ns.osx64 = target.subdir === 'osx-64';
  ns.win64 = target.subdir === 'win-64';
  ns.win32 = target.subdir === 'win-32';
  ns.target_platform = target.subdir;
  ns.build_platform = build.subdir;
  const py = pyNumber(variant.python);
  if (py !== undefined) {
    ns.py = py;
    ns.py3k = variant.python?.startsWith('3.') === true;
    ns.py2k = variant.python?.startsWith('2.') === true;
    ns[`py${py}`] = true;
  }
  const np = pyNumber(variant.numpy);
  if (np !== undefined) ns.np = np;
  return ns;
}
