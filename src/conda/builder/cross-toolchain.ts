import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, readFileSync, statSync } from 'node:fs';
import { basename, delimiter, join } from 'node:path';
import { AccelError } from '../../core/errors.ts';
import { isMachineTool, MACHINE_TOOLS } from '../build-tools.ts';
import { specName } from '../record.ts';
import type { PinnedSysroot, SysrootFlags } from './sysroot.ts';

/**
 * The machine's tools that stand in for conda-forge's compiler packages: Debian's cross gcc for
 * `compiler('c')` (rendered `gcc_linux-aarch64 12`), its libc for `stdlib('c')`, and plain build tools.
 */
export interface Toolchain {
  target: string;
  /** GNU triplet of the target (`aarch64-linux-gnu`). */
  host: string;
  /** Its CPU, the triplet's first part (`aarch64`): ELF machine, qemu, CMake and Meson names. */
  cpu: string;
  /** Debian's name for it (`arm64`): the cross packages' suffix. */
  debArch: string;
  /** GNU triplet of the machine the build runs on. */
  build: string;
  cross: boolean;
  /** The sysroot of the target's libc (qemu's `-L`). */
  sysroot: string;
  /** The qemu user emulator for the target, when cross (CROSSCOMPILING_EMULATOR). */
  emulator: string | null;
  /** Compiler versions and binaries' digests: part of every build's inputs. */
  identity: string;
  /**
   * Variables for build scripts: CC, CXX, AR, RANLIB, ... As conda-forge's activation sets them, these are
   * command names (`aarch64-linux-gnu-gcc`) found on PATH, not paths: a build that records its compiler
   * (openssl's `version -a`) records the same string whether or not the compile cache stands in front of it.
   */
  env: Record<string, string>;
  /** The same tools' absolute paths on this machine. */
  paths: Record<string, string>;
  /** Build requirements the toolchain satisfies, by package name. */
  provides: Set<string>;
  /** The cross gcc's full version (`12.2.0`) when a compiler was asked for: what its runtime packages carry. */
  gccVersion: string | null;
  /** Which languages' compilers the recipe asked for: each exports its runtime (libgcc, libstdcxx). */
  languages: { c: boolean; cxx: boolean };
  /** The pinned old sysroot the build links against (sysroot.ts), or null: the machine's cross libc. */
  pinned: PinnedSysroot | null;
  /** The flags that make the compilers use `pinned` (empty strings without one). */
  sysrootFlags: SysrootFlags;
}

interface Tool {
  variable: string;
  suffix: string;
  apt: (triplet: string) => string;
}

const TRIPLETS: Record<string, { triplet: string; debArch: string; qemu: string }> = {
  'linux-aarch64': { triplet: 'aarch64-linux-gnu', debArch: 'arm64', qemu: 'qemu-aarch64-static' },
  'linux-64': { triplet: 'x86_64-linux-gnu', debArch: 'amd64', qemu: 'qemu-x86_64-static' },
  'linux-ppc64le': { triplet: 'powerpc64le-linux-gnu', debArch: 'ppc64el', qemu: 'qemu-ppc64le-static' },
};

const CC: Tool = { variable: 'CC', suffix: 'gcc', apt: (t) => `gcc-${t}` };
const CXX: Tool = { variable: 'CXX', suffix: 'g++', apt: (t) => `g++-${t}` };
const bin = (variable: string, suffix: string): Tool => ({ variable, suffix, apt: (t) => `binutils-${t}` });
const gcc = (variable: string, suffix: string): Tool => ({ variable, suffix, apt: (t) => `gcc-${t}` });
/** What conda-forge's compiler activation exports besides CC and CXX, all for the target. */
const BINUTILS: Tool[] = [
  gcc('CPP', 'cpp'),
  gcc('GCC', 'gcc'),
  gcc('GCC_AR', 'gcc-ar'),
  gcc('GCC_NM', 'gcc-nm'),
  gcc('GCC_RANLIB', 'gcc-ranlib'),
  bin('AR', 'ar'),
  bin('AS', 'as'),
  bin('LD', 'ld'),
  bin('LD_GOLD', 'ld.gold'),
  bin('NM', 'nm'),
  bin('RANLIB', 'ranlib'),
  bin('STRIP', 'strip'),
  bin('OBJCOPY', 'objcopy'),
  bin('OBJDUMP', 'objdump'),
  bin('READELF', 'readelf'),
  bin('ADDR2LINE', 'addr2line'),
  bin('CXXFILT', 'c++filt'),
  bin('ELFEDIT', 'elfedit'),
  bin('SIZE', 'size'),
  bin('STRINGS', 'strings'),
];

/**
 * conda-forge's compiler and stdlib package names (`compiler('c')` renders `<c_compiler>_<target>`), and what
 * of the machine's cross toolchain stands in for each. gcc_bootstrap is the compiler conda-forge builds its own
 * toolchain's dependencies (zlib) with: to the machine, the same gcc.
 */
export const COMPILER_NAMES: Record<string, Tool | 'stdlib' | 'binutils'> = {
  gcc: CC,
  gcc_bootstrap: CC,
  c_compiler_stub: CC,
  gxx: CXX,
  gxx_bootstrap: CXX,
  cxx_compiler_stub: CXX,
  sysroot: 'stdlib',
  binutils: 'binutils',
};

/** The language of a compiler package (`gxx_linux-aarch64` → cxx), or null when the name is no compiler. */
export function compilerLanguage(name: string): 'c' | 'cxx' | null {
  const tool = COMPILER_NAMES[name.slice(0, name.lastIndexOf('_'))];
  return tool === CC ? 'c' : tool === CXX ? 'cxx' : null;
}

/** Which compiler package names the toolchain provides for a target: `gcc_linux-aarch64`, `gxx_…`, `sysroot_…`. */
function compilerTool(name: string, target: string): Tool | 'stdlib' | 'binutils' | undefined {
  const suffix = `_${target}`;
  if (!name.endsWith(suffix)) return undefined;
  const base = name.slice(0, -suffix.length);
  return COMPILER_NAMES[base];
}

/** Whether a build requirement names a compiler (or the stdlib, binutils) this machine's toolchain stands in for. */
export function isToolchainPackage(name: string, target: string): boolean {
  return compilerTool(name, target) !== undefined;
}

export function findOnPath(cmd: string, path: string | undefined): string | undefined {
  for (const dir of (path ?? '').split(delimiter)) {
    if (dir === '') continue;
    const file = join(dir, cmd);
    try {
      accessSync(file, constants.X_OK);
      if (statSync(file).isFile()) return file;
    } catch {}
  }
  return undefined;
}

/**
 * Checks that the machine can satisfy a recipe's build requirements and returns the tools. `build` lists
 * the build requirements still open after the channel; those that are neither tools nor compilers come
 * back in `missing`.
 */
export function resolveToolchain(
  target: string,
  build: string[],
  env: NodeJS.ProcessEnv,
  /** Whether the build needs qemu (its tests run emulated); without, only a build that runs its programs does. */
  needEmulator = true,
): { toolchain: Toolchain; missing: string[] } {
  const hostArch = process.arch === 'arm64' ? 'linux-aarch64' : 'linux-64';
  const t = TRIPLETS[target === 'noarch' ? hostArch : target];
  if (!t) {
    throw new AccelError('ACCEL_CONDA_PLATFORM', `accel conda build cannot build for ${target}`, {
      hint: `supported targets: ${Object.keys(TRIPLETS).join(', ')} and noarch`,
    });
  }
  const b = TRIPLETS[hostArch] as (typeof TRIPLETS)[string];
  const cross = t.triplet !== b.triplet;
  const prefix = cross ? `${t.triplet}-` : '';
  const wanted = new Set<Tool>();
  let stdlib = false;
  const missing: string[] = [];
  const provides = new Set<string>();
  const subdir = target === 'noarch' ? hostArch : target;
  for (const spec of build) {
    const name = specName(spec);
    const tool = compilerTool(name, subdir);
    if (tool === 'stdlib') stdlib = true;
    else if (tool === 'binutils') wanted.add(CC);
    else if (tool) {
      wanted.add(tool);
      // conda-forge's gcc_bootstrap is one package holding gcc and g++ (zstd's C++ pzstd is linked by $CXX).
      if (name.startsWith('gcc_bootstrap_') || name.startsWith('gxx_bootstrap_')) wanted.add(CXX);
    } else if (name.endsWith(`_${subdir}`)) {
      const known = Object.keys(COMPILER_NAMES).map((n) => `${n}_${subdir}`);
      throw new AccelError(
        'ACCEL_CONDA_UNKNOWN_COMPILER',
        `${name}: no compiler of this machine stands in for it (known: ${known.join(', ')})`,
        { hint: 'set c_compiler/cxx_compiler in a --variant-config to one of the known names' },
      );
    } else if (!isMachineTool(name)) {
      missing.push(spec);
      continue;
    }
    provides.add(name);
  }
  const missingApt = new Set<string>();
  const toolPaths: Record<string, string> = {};
  const identity: string[] = [`target ${target}`, `host ${t.triplet}`];
  // conda-forge's gxx package depends on its gcc: a C++ build has a C compiler too.
  if (wanted.has(CXX)) wanted.add(CC);
  const tools = wanted.size > 0 ? [...wanted, ...BINUTILS] : [];
  for (const tool of tools) {
    const file = findOnPath(`${prefix}${tool.suffix}`, env.PATH);
    if (!file) missingApt.add(tool.apt(t.triplet));
    else toolPaths[tool.variable] = file;
  }
  const sysroot = cross ? `/usr/${t.triplet}` : '/';
  if (stdlib && cross) {
    try {
      statSync(join(sysroot, 'include', 'stdio.h'));
    } catch {
      missingApt.add(`libc6-dev-${t.debArch}-cross`);
    }
  }
  for (const spec of build) {
    const machine = MACHINE_TOOLS[specName(spec)];
    if (!machine) continue;
    const found = machine.probe.startsWith('/') ? existsSync(machine.probe) : findOnPath(machine.probe, env.PATH);
    if (!found) missingApt.add(machine.apt);
  }
  let emulator: string | null = null;
  if (cross) {
    emulator = findOnPath(t.qemu, env.PATH) ?? null;
    if (!emulator && wanted.size > 0 && needEmulator) missingApt.add('qemu-user-static');
  }
  if (missingApt.size > 0) {
    const list = [...missingApt].sort();
    throw new AccelError(
      'ACCEL_CONDA_NO_TOOLCHAIN',
      `the ${cross ? 'cross ' : ''}toolchain for ${target} is not installed: ${list.join(', ')} missing`,
      { hint: `install it with: apt-get install -y ${list.join(' ')}` },
    );
  }
  if (toolPaths.CXX) toolPaths.GXX = toolPaths.CXX;
  const toolEnv = Object.fromEntries(Object.entries(toolPaths).map(([k, v]) => [k, basename(v)]));
  for (const tool of [CC, CXX]) {
    const file = toolPaths[tool.variable];
    if (file && wanted.has(tool)) identity.push(`${tool.suffix} ${compilerVersion(file)} ${fileDigest(file)}`);
  }
  return {
    toolchain: {
      target,
      host: t.triplet,
      cpu: t.triplet.split('-')[0] as string,
      debArch: t.debArch,
      build: b.triplet,
      cross,
      sysroot,
      emulator,
      identity: identity.join('\n'),
      env: toolEnv,
      paths: toolPaths,
      provides,
      gccVersion: toolPaths.CC ? compilerVersion(toolPaths.CC) : null,
      languages: { c: wanted.has(CC), cxx: wanted.has(CXX) },
      pinned: null,
      sysrootFlags: { cflags: '', cxxflags: '', ldflags: '' },
    },
    missing,
  };
}

const versions = new Map<string, string>();

function compilerVersion(file: string): string {
  let v = versions.get(file);
  if (v === undefined) {
    v = execFileSync(file, ['-dumpfullversion'], { encoding: 'utf8' }).trim();
    versions.set(file, v);
  }
  return v;
}

function fileDigest(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex').slice(0, 16);
}
