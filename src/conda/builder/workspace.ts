import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { isProcessAlive } from '../../core/atomic-fs.ts';
import { makeDirs } from '../../core/dirs.ts';
import { AccelError, errnoCode } from '../../core/errors.ts';
import type { OutputRecord } from '../record.ts';
import { findOnPath, type Toolchain } from './cross-toolchain.ts';

/** conda-build pads prefixes to 255 characters so that install can put any shorter path in their place. */
const PREFIX_LENGTH = 255;

/**
 * The directories of one build. The root depends only on the feedstock and the target (not on ACCEL_HOME, the
 * time or the other inputs), because the host prefix ends up inside binaries (rpath) and packages: same inputs,
 * same bytes. And a rebuild with other inputs (a build number bump) compiles with the very same paths, so
 * its compiles are the compile cache's hits.
 */
export interface Workspace {
  root: string;
  srcDir: string;
  prefix: string;
  buildPrefix: string;
  testPrefix: string;
  outDir: string;
  log: string;
}

export function workspaceFor(feedstock: string, target: string): Workspace {
  const root = join(tmpdir(), 'accel-conda-bld', `${feedstock}-${target}`);
  const pad = (name: string) => `${name}${'_placehold'.repeat(30)}`.slice(0, PREFIX_LENGTH - root.length - 1);
  return {
    root,
    srcDir: join(root, 'work'),
    prefix: join(root, pad('_h_env')),
    // Padded too: packages installed into it are relocated like the host's.
    buildPrefix: join(root, pad('_build_env')),
    testPrefix: join(root, '_test_env'),
    outDir: join(root, 'out'),
    log: join(root, 'build.log'),
  };
}

/**
 * Takes the workspace for this process: a second build of the same inputs waits for nothing and fails
 * clearly rather than sharing the directories; a workspace left by a dead process is cleared.
 */
export function claimWorkspace(ws: Workspace): () => void {
  makeDirs(join(ws.root, '..'));
  sweepAbandoned(join(ws.root, '..'));
  const owner = `${ws.root}.pid`;
  try {
    writeFileSync(owner, String(process.pid), { flag: 'wx' });
  } catch (err) {
    if (errnoCode(err) !== 'EEXIST') throw err;
    const pid = Number(readFileSync(owner, 'utf8'));
    if (pid !== process.pid && Number.isInteger(pid) && pid > 0 && isProcessAlive(pid)) {
      throw new AccelError('ACCEL_CONDA_BUSY', `another accel (pid ${pid}) is building this feedstock in ${ws.root}`, {
        hint: 'wait for it to finish (a build of the same inputs will then be a store hit)',
      });
    }
    writeFileSync(owner, String(process.pid));
  }
  rmSync(ws.root, { recursive: true, force: true });
  for (const d of [ws.srcDir, ws.prefix, ws.buildPrefix, ws.outDir]) makeDirs(d);
  return () => {
    rmSync(ws.root, { recursive: true, force: true });
    rmSync(owner, { force: true });
  };
}

/**
 * What conda-forge's build environment exports to build.sh for a cross build: the toolchain as its compiler
 * activation packages set it (CC … STRINGS, all for the target), their flags (CFLAGS … LDFLAGS, DEBUG_*), the
 * platforms (HOST, BUILD, build_alias, host_alias, target_platform, CONDA_BUILD_CROSS_COMPILATION,
 * CROSSCOMPILING_EMULATOR), CMAKE_ARGS and a Meson cross file, pkg-config confined to the host prefix, the
 * prefixes and conda-build's own variables.
 */
export function buildEnv(
  ws: Workspace,
  record: OutputRecord,
  toolchain: Toolchain,
  base: NodeJS.ProcessEnv,
  sourceDateEpoch: number,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const k of ['PATH', 'HOME', 'LANG', 'LC_ALL', 'TERM', 'TMPDIR', 'USER']) {
    const v = base[k];
    if (v !== undefined) env[k] = v;
  }
  const p = ws.prefix;
  const flags = compilerFlags(p, toolchain);
  const pkgconfig = `${p}/lib/pkgconfig:${p}/share/pkgconfig`;
  Object.assign(env, toolchain.env, flags, {
    PATH: `${ws.buildPrefix}/bin:${env.PATH ?? '/usr/bin:/bin'}`,
    PREFIX: p,
    CONDA_PREFIX: p,
    CONDA_DEFAULT_ENV: p,
    BUILD_PREFIX: ws.buildPrefix,
    SRC_DIR: ws.srcDir,
    RECIPE_DIR: record.recipe_dir,
    PKG_NAME: record.name,
    PKG_VERSION: record.version,
    PKG_BUILDNUM: String(record.build_number),
    PKG_BUILD_STRING: record.build_string,
    PKG_HASH: record.build_string.split('_')[0]?.replace(/^py\d+/, '') ?? '',
    CONDA_BUILD: '1',
    target_platform: toolchain.target === 'noarch' ? 'noarch' : toolchain.target,
    build_platform: process.arch === 'arm64' ? 'linux-aarch64' : 'linux-64',
    SUBDIR: toolchain.target,
    ARCH: toolchain.cpu,
    HOST: toolchain.host,
    BUILD: toolchain.build,
    host_alias: toolchain.host,
    build_alias: toolchain.build,
    CONDA_TOOLCHAIN_HOST: toolchain.host,
    CONDA_TOOLCHAIN_BUILD: toolchain.build,
    CONDA_BUILD_SYSROOT: toolchain.sysroot,
    CPU_COUNT: base.CPU_COUNT ?? String(availableParallelism()),
    SHLIB_EXT: '.so',
    CMAKE_GENERATOR: 'Unix Makefiles',
    PKG_CONFIG_PATH: pkgconfig,
    PKG_CONFIG_LIBDIR: pkgconfig,
    SOURCE_DATE_EPOCH: String(sourceDateEpoch),
  });
  const python =
    record.variant.python ??
    /^python\s+(\d+\.\d+)/.exec(record.requirements.host.find((h) => /^python\s/.test(h)) ?? '')?.[1];
  if (python) {
    env.PY_VER = python.replace(/^(\d+)\.(\d+).*$/, '$1.$2');
    env.PYTHON = `${p}/bin/python`;
    env.SP_DIR = `${p}/lib/python${env.PY_VER}/site-packages`;
  }
  const cmake = [`-DCMAKE_INSTALL_PREFIX=${p}`, '-DCMAKE_INSTALL_LIBDIR=lib', '-DCMAKE_BUILD_TYPE=Release'];
  cmake.push(`-DCMAKE_PROGRAM_PATH=${ws.buildPrefix}/bin;${p}/bin`);
  if (toolchain.cross) {
    env.CONDA_BUILD_CROSS_COMPILATION = '1';
    if (toolchain.emulator) env.CROSSCOMPILING_EMULATOR = toolchain.emulator;
    env.QEMU_LD_PREFIX = toolchain.sysroot;
    // The build machine's own compilers, for generators a build compiles and runs (ncurses' make_keys).
    for (const [name, cmd] of [
      ['CC_FOR_BUILD', 'gcc'],
      ['CXX_FOR_BUILD', 'g++'],
    ] as const) {
      const file = findOnPath(cmd, base.PATH);
      if (file) env[name] = file;
    }
    // What conda-forge's cross CMAKE_ARGS say: the target system, and libraries and headers from the host
    // prefix and the sysroot only, programs from the build machine.
    cmake.push(
      '-DCMAKE_SYSTEM_NAME=Linux',
      `-DCMAKE_SYSTEM_PROCESSOR=${toolchain.cpu}`,
      `-DCMAKE_FIND_ROOT_PATH=${p};${toolchain.sysroot}`,
      '-DCMAKE_FIND_ROOT_PATH_MODE_PROGRAM=NEVER',
      '-DCMAKE_FIND_ROOT_PATH_MODE_LIBRARY=ONLY',
      '-DCMAKE_FIND_ROOT_PATH_MODE_INCLUDE=ONLY',
      '-DCMAKE_FIND_ROOT_PATH_MODE_PACKAGE=ONLY',
    );
    if (toolchain.emulator) cmake.push(`-DCMAKE_CROSSCOMPILING_EMULATOR=${toolchain.emulator}`);
    const crossFile = join(ws.root, 'meson_cross_file.txt');
    writeFileSync(crossFile, mesonCrossFile(toolchain, flags));
    env.MESON_ARGS = `-Dbuildtype=release --prefix=${p} -Dlibdir=lib --cross-file ${crossFile}`;
  } else {
    env.MESON_ARGS = `-Dbuildtype=release --prefix=${p} -Dlibdir=lib`;
  }
  env.CMAKE_ARGS = cmake.join(' ');
  return env;
}

/** conda-forge's flags for Linux per target CPU (its gcc and gxx activation scripts), the host prefix as system root. */
export function compilerFlags(
  prefix: string,
  toolchain: Pick<Toolchain, 'cpu' | 'sysrootFlags'>,
): Record<string, string> {
  const { cpu } = toolchain;
  // After the host prefix's -isystem: its headers come first, then the compiler's, then the pinned libc's.
  const sys = toolchain.sysrootFlags;
  const after = (flags: string, more: string) => (more ? `${flags} ${more}` : flags);
  const x86 = cpu === 'x86_64';
  const arch = x86 ? '-march=nocona -mtune=haswell ' : cpu === 'powerpc64le' ? '-mcpu=power8 -mtune=power8 ' : '';
  const opt = x86 ? '-O2 -ffunction-sections' : '-O3';
  const common = `${arch}-ftree-vectorize -fPIC -fstack-protector-strong -fno-plt ${opt} -pipe`;
  const debug = `${arch}-ftree-vectorize -fPIC -fstack-protector-all -fno-plt -Og -g -Wall -Wextra -fvar-tracking-assignments -pipe`;
  const cxx = (flags: string) => flags.replace(' -pipe', ' -fvisibility-inlines-hidden -fmessage-length=0 -pipe');
  const inc = `-isystem ${prefix}/include`;
  const gc = x86 ? ' -Wl,--disable-new-dtags -Wl,--gc-sections' : '';
  return {
    CFLAGS: after(`${common} ${inc}`, sys.cflags),
    CXXFLAGS: after(`${cxx(common)} ${inc}`, sys.cxxflags),
    CPPFLAGS: `-DNDEBUG -D_FORTIFY_SOURCE=2 -O2 ${inc}`,
    LDFLAGS: after(
      `-Wl,-O2 -Wl,--sort-common -Wl,--as-needed -Wl,-z,relro -Wl,-z,now${gc} -Wl,--allow-shlib-undefined -Wl,-rpath,${prefix}/lib -Wl,-rpath-link,${prefix}/lib -L${prefix}/lib`,
      sys.ldflags,
    ),
    DEBUG_CFLAGS: after(`${debug} ${inc}`, sys.cflags),
    DEBUG_CXXFLAGS: after(`${cxx(debug)} ${inc}`, sys.cxxflags),
    DEBUG_CPPFLAGS: `-D_DEBUG -D_FORTIFY_SOURCE=2 -Og ${inc}`,
  };
}

/** A Meson cross file for the target: the toolchain's binaries, the host machine, and qemu as exe_wrapper. */
function mesonCrossFile(toolchain: Toolchain, flags: Record<string, string>): string {
  const q = (s: string) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  const list = (s: string | undefined) => `[${(s ?? '').split(/\s+/).filter(Boolean).map(q).join(', ')}]`;
  const cpu = toolchain.cpu;
  const binaries = Object.entries({ c: 'CC', cpp: 'CXX', ar: 'AR', strip: 'STRIP', nm: 'NM', ranlib: 'RANLIB' })
    .filter(([, v]) => toolchain.env[v])
    .map(([k, v]) => `${k} = ${q(toolchain.env[v] as string)}`);
  if (toolchain.emulator) binaries.push(`exe_wrapper = [${q(toolchain.emulator)}, '-L', ${q(toolchain.sysroot)}]`);
  binaries.push("pkg-config = 'pkg-config'");
  return [
    '[binaries]',
    ...binaries,
    '',
    '[built-in options]',
    `c_args = ${list(`${flags.CPPFLAGS} ${flags.CFLAGS}`)}`,
    `cpp_args = ${list(`${flags.CPPFLAGS} ${flags.CXXFLAGS}`)}`,
    `c_link_args = ${list(flags.LDFLAGS)}`,
    `cpp_link_args = ${list(flags.LDFLAGS)}`,
    '',
    '[host_machine]',
    "system = 'linux'",
    `cpu_family = ${q(cpu)}`,
    `cpu = ${q(cpu)}`,
    "endian = 'little'",
    '',
  ].join('\n');
}

/** Removes the workspaces of builds whose process died (killed mid-build): they hold whole prefixes. */
function sweepAbandoned(parent: string): void {
  for (const name of readdirSync(parent)) {
    if (!name.endsWith('.pid')) continue;
    const owner = join(parent, name);
    let pid: number;
    try {
      pid = Number(readFileSync(owner, 'utf8'));
    } catch {
      continue;
    }
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || isProcessAlive(pid)) continue;
    rmSync(join(parent, name.slice(0, -'.pid'.length)), { recursive: true, force: true });
    rmSync(owner, { force: true });
  }
}
