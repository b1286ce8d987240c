import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { AccelError } from '../../core/errors.ts';
import { specName } from '../record.ts';

/**
 * The machine's tools that stand in for conda-forge's compiler packages: Debian's cross gcc for
 * `compiler('c')` (rendered `gcc_linux-aarch64 12`), its libc for `stdlib('c')`, and plain build tools.
 */
export interface Toolchain {
  target: string;
  /** GNU triplet of the target (`aarch64-linux-gnu`). */
  host: string;
  /** GNU triplet of the machine the build runs on. */
  build: string;
  cross: boolean;
  /** The sysroot of the target's libc (qemu's `-L`). */
  sysroot: string;
  /** The qemu user emulator for the target, when cross (CROSSCOMPILING_EMULATOR). */
  emulator: string | null;
  /** Compiler versions and binaries' digests: part of every build's inputs. */
  identity: string;
  /** Variables for build scripts: CC, CXX, AR, RANLIB, ... */
  env: Record<string, string>;
  /** Build requirements the toolchain satisfies, by package name. */
  provides: Set<string>;
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
const BINUTILS: Tool[] = [
  { variable: 'AR', suffix: 'ar', apt: (t) => `binutils-${t}` },
  { variable: 'RANLIB', suffix: 'ranlib', apt: (t) => `binutils-${t}` },
  { variable: 'LD', suffix: 'ld', apt: (t) => `binutils-${t}` },
  { variable: 'NM', suffix: 'nm', apt: (t) => `binutils-${t}` },
  { variable: 'STRIP', suffix: 'strip', apt: (t) => `binutils-${t}` },
  { variable: 'OBJDUMP', suffix: 'objdump', apt: (t) => `binutils-${t}` },
];

/** Plain tools conda-forge ships as packages that any Debian build machine has (checked on PATH). */
const HOST_TOOLS: Record<string, string> = {
  make: 'make',
  cmake: 'cmake',
  ninja: 'ninja-build',
  pkg_config: 'pkg-config',
  'pkg-config': 'pkg-config',
  patch: 'patch',
  m4: 'm4',
  bison: 'bison',
  flex: 'flex',
  libtool: 'libtool',
  autoconf: 'autoconf',
  automake: 'automake',
};

/** Which compiler package names the toolchain provides for a target: `gcc_linux-aarch64`, `gxx_…`, `sysroot_…`. */
function compilerTool(name: string, target: string): Tool | 'stdlib' | undefined {
  const suffix = `_${target}`;
  if (!name.endsWith(suffix)) return undefined;
  const base = name.slice(0, -suffix.length);
  if (base === 'gcc' || base === 'c_compiler_stub') return CC;
  if (base === 'gxx') return CXX;
  if (base === 'sysroot') return 'stdlib';
  return undefined;
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
  for (const spec of build) {
    const name = specName(spec);
    const tool = compilerTool(name, target === 'noarch' ? hostArch : target);
    if (tool === 'stdlib') stdlib = true;
    else if (tool) wanted.add(tool);
    else if (HOST_TOOLS[name] === undefined) {
      missing.push(spec);
      continue;
    }
    provides.add(name);
  }
  const missingApt = new Set<string>();
  const toolEnv: Record<string, string> = {};
  const identity: string[] = [`target ${target}`, `host ${t.triplet}`];
  const tools = wanted.size > 0 ? [...wanted, ...BINUTILS] : [];
  for (const tool of tools) {
    const file = findOnPath(`${prefix}${tool.suffix}`, env.PATH);
    if (!file) missingApt.add(tool.apt(t.triplet));
    else toolEnv[tool.variable] = file;
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
    const apt = HOST_TOOLS[specName(spec)];
    if (apt && !findOnPath(specName(spec) === 'pkg_config' ? 'pkg-config' : specName(spec), env.PATH)) {
      missingApt.add(apt);
    }
  }
  let emulator: string | null = null;
  if (cross) {
    emulator = findOnPath(t.qemu, env.PATH) ?? null;
    if (!emulator && wanted.size > 0) missingApt.add('qemu-user-static');
  }
  if (missingApt.size > 0) {
    const list = [...missingApt].sort();
    throw new AccelError(
      'ACCEL_CONDA_NO_TOOLCHAIN',
      `the ${cross ? 'cross ' : ''}toolchain for ${target} is not installed: ${list.join(', ')} missing`,
      { hint: `install it with: apt-get install -y ${list.join(' ')}` },
    );
  }
  for (const tool of [CC, CXX]) {
    const file = toolEnv[tool.variable];
    if (file && wanted.has(tool)) identity.push(`${tool.suffix} ${compilerVersion(file)} ${fileDigest(file)}`);
  }
  return {
    toolchain: {
      target,
      host: t.triplet,
      build: b.triplet,
      cross,
      sysroot,
      emulator,
      identity: identity.join('\n'),
      env: toolEnv,
      provides,
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
