import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { isProcessAlive } from '../../core/atomic-fs.ts';
import { AccelError, errnoCode } from '../../core/errors.ts';
import type { OutputRecord } from '../record.ts';
import type { Toolchain } from './cross-toolchain.ts';

/** conda-build pads prefixes to 255 characters so that install can put any shorter path in their place. */
const PREFIX_LENGTH = 255;

/**
 * The directories of one build. The root depends only on the build's inputs (not on ACCEL_HOME or the
 * time), because the host prefix ends up inside binaries (rpath) and packages: same inputs, same bytes.
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

export function workspaceFor(key: string): Workspace {
  const root = join(tmpdir(), 'accel-conda-bld', key.slice(0, 16));
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
  mkdirSync(join(ws.root, '..'), { recursive: true });
  sweepAbandoned(join(ws.root, '..'));
  const owner = `${ws.root}.pid`;
  try {
    writeFileSync(owner, String(process.pid), { flag: 'wx' });
  } catch (err) {
    if (errnoCode(err) !== 'EEXIST') throw err;
    const pid = Number(readFileSync(owner, 'utf8'));
    if (pid !== process.pid && Number.isInteger(pid) && pid > 0 && isProcessAlive(pid)) {
      throw new AccelError('ACCEL_CONDA_BUSY', `another accel (pid ${pid}) is building the same inputs in ${ws.root}`, {
        hint: 'wait for it to finish; its result will be in the store',
      });
    }
    writeFileSync(owner, String(process.pid));
  }
  rmSync(ws.root, { recursive: true, force: true });
  for (const d of [ws.srcDir, ws.prefix, ws.buildPrefix, ws.outDir]) mkdirSync(d, { recursive: true });
  return () => {
    rmSync(ws.root, { recursive: true, force: true });
    rmSync(owner, { force: true });
  };
}

/**
 * What conda-forge's cross builds export to build.sh: the toolchain (CC, AR, ...), the platforms (HOST,
 * BUILD, target_platform, CONDA_BUILD_CROSS_COMPILATION, CROSSCOMPILING_EMULATOR), the prefixes, and flags
 * that find the host prefix's headers and libraries.
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
  const cflags = `-O2 -pipe -fPIC -I${p}/include`;
  Object.assign(env, toolchain.env, {
    PATH: `${ws.buildPrefix}/bin:${env.PATH ?? '/usr/bin:/bin'}`,
    PREFIX: p,
    BUILD_PREFIX: ws.buildPrefix,
    SRC_DIR: ws.srcDir,
    RECIPE_DIR: record.recipe_dir,
    PKG_NAME: record.name,
    PKG_VERSION: record.version,
    PKG_BUILDNUM: String(record.build_number),
    PKG_BUILD_STRING: record.build_string,
    CONDA_BUILD: '1',
    target_platform: toolchain.target === 'noarch' ? 'noarch' : toolchain.target,
    build_platform: process.arch === 'arm64' ? 'linux-aarch64' : 'linux-64',
    HOST: toolchain.host,
    BUILD: toolchain.build,
    CPU_COUNT: base.CPU_COUNT ?? String(availableParallelism()),
    SHLIB_EXT: '.so',
    CFLAGS: cflags,
    CXXFLAGS: cflags,
    CPPFLAGS: `-DNDEBUG -I${p}/include`,
    LDFLAGS: `-Wl,-O1 -Wl,-rpath,${p}/lib -Wl,-rpath-link,${p}/lib -L${p}/lib`,
    SOURCE_DATE_EPOCH: String(sourceDateEpoch),
  });
  const cmake = [`-DCMAKE_INSTALL_PREFIX=${p}`, '-DCMAKE_INSTALL_LIBDIR=lib', '-DCMAKE_BUILD_TYPE=Release'];
  if (toolchain.cross) {
    env.CONDA_BUILD_CROSS_COMPILATION = '1';
    if (toolchain.emulator) env.CROSSCOMPILING_EMULATOR = toolchain.emulator;
    env.QEMU_LD_PREFIX = toolchain.sysroot;
    // What conda-forge's cross CMAKE_ARGS say: the target system, and libraries and headers from the host
    // prefix and the sysroot only, programs from the build machine.
    cmake.push(
      '-DCMAKE_SYSTEM_NAME=Linux',
      `-DCMAKE_SYSTEM_PROCESSOR=${toolchain.host.split('-')[0]}`,
      `-DCMAKE_FIND_ROOT_PATH=${p};${toolchain.sysroot}`,
      '-DCMAKE_FIND_ROOT_PATH_MODE_PROGRAM=NEVER',
      '-DCMAKE_FIND_ROOT_PATH_MODE_LIBRARY=ONLY',
      '-DCMAKE_FIND_ROOT_PATH_MODE_INCLUDE=ONLY',
      '-DCMAKE_FIND_ROOT_PATH_MODE_PACKAGE=ONLY',
    );
    if (toolchain.emulator) cmake.push(`-DCMAKE_CROSSCOMPILING_EMULATOR=${toolchain.emulator};-L;${toolchain.sysroot}`);
  }
  env.CMAKE_ARGS = cmake.join(' ');
  return env;
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
