import { execFile } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, matchesGlob } from 'node:path';
import { promisify } from 'node:util';
import { AccelError } from '../../core/errors.ts';
import type { Digest } from '../../store/digest.ts';
import type { OutputRecord } from '../record.ts';
import { solveEnvironment, stagedChannel } from '../solve/solve.ts';
import type { ChannelPackage } from './channel-packages.ts';
import type { BuildContext } from './context.ts';
import { resolveToolchain, type Toolchain } from './cross-toolchain.ts';
import { ELF_MACHINES, elfMachine } from './elf.ts';
import { emulationPrefix } from './emulation.ts';
import { linkMachineTools } from './machine-bin.ts';
import { starBareVersion } from './match.ts';
import { channelSubdirs, fetchPackages, solverChannels, targetVirtual } from './prepare.ts';
import { logLine, logTail, runScript } from './run-script.ts';
import { TESTED_NS, testKey } from './test-cache.ts';
import { compilerFlags } from './workspace.ts';

const run = promisify(execFile);

import { makeDirs } from '../../core/dirs.ts';
import type { Workspace } from './workspace.ts';

/** A package built in this run and not yet published: tests install it from its build output. */
export interface StagedPackage {
  record: ChannelPackage;
  path: string;
  /** The rendered output it was made from. */
  output: OutputRecord;
}

/**
 * Runs an output's tests like conda-build: the package and its run requirements plus `test.requires`
 * installed into a fresh prefix, then `test.commands` and the recipe's run_test.sh with `bash -e`. For a
 * cross build, the target's executables in the prefix are reached through shims that run them under qemu.
 */
export async function testOutput(options: {
  record: OutputRecord;
  staged: StagedPackage[];
  ws: Workspace;
  toolchain: Toolchain;
  ctx: BuildContext;
}): Promise<TestOutcome> {
  const { record, staged, ws, toolchain, ctx } = options;
  const script = [...record.test.commands];
  const runTest = join(record.recipe_dir, 'run_test.sh');
  if (existsSync(runTest)) script.push(`bash -e ${shellQuote(runTest)}`);
  if (script.length === 0 || ctx.test === 'skip') return { seconds: 0, ran: false, cached: false };
  const what = `${record.name}-${record.version}-${record.build_string}`;
  rmSync(ws.testPrefix, { recursive: true, force: true });
  makeDirs(ws.testPrefix);
  // Test requirements the machine provides (make, a compiler to build a test program) are not packages.
  const testTools = resolveToolchain(ctx.targetPlatform, record.test.requires, ctx.env);
  // The tests run under qemu on the pinned sysroot's glibc: a runtime or dependency that needs a newer one is not
  // installed (it would not load there, nor on the systems the package promises to install on). This build's
  // packages come first, then the local channel and the upstreams.
  const packages = await solveEnvironment({
    what: `${what}: the test environment`,
    specs: [`${record.name} ==${record.version} ${record.build_string}`, ...testTools.missing.map(starBareVersion)],
    channels: [
      stagedChannel(
        `this build of ${record.name}`,
        staged.map((s) => s.record),
      ),
      ...solverChannels(ctx),
    ],
    subdirs: channelSubdirs(ctx.targetPlatform),
    virtual: targetVirtual(toolchain),
  });
  await fetchPackages(packages, ctx);
  for (const p of packages) await ctx.tools.install(p.path, ws.testPrefix);
  const env: Record<string, string> = {};
  for (const k of ['HOME', 'LANG', 'LC_ALL', 'TMPDIR', 'USER']) {
    const v = ctx.env[k];
    if (v !== undefined) env[k] = v;
  }
  // Machine tools the test requires (pkg-config, make) in a bin of their own, as the build has them.
  const tools = join(ws.root, '_test_tools');
  linkMachineTools(tools, testTools.toolchain.provides, ctx.env.PATH);
  let path = `${join(ws.testPrefix, 'bin')}:${tools}:${ctx.env.PATH ?? '/usr/bin:/bin'}`;
  const emulated = ctx.test === 'emulated' && toolchain.cross;
  const wrap = emulated ? emulationPrefix(toolchain.cpu, toolchain.emulator) : null;
  if (emulated && !wrap) {
    // No private binfmt_misc here: the prefix's programs are reached through shims that run them under qemu.
    const shims = join(ws.root, '_test_shims');
    writeShims(join(ws.testPrefix, 'bin'), shims, toolchain);
    path = `${shims}:${path}`;
  }
  const t = ws.testPrefix;
  const pkgconfig = `${t}/lib/pkgconfig:${t}/share/pkgconfig`;
  // What conda-build's test environment sets: the package's variables, the platform, pkg-config on the
  // test prefix, and the compilers when the test builds something (test/requires names a compiler).
  const tested = testTools.toolchain;
  Object.assign(env, tested.env, Object.keys(tested.env).length > 0 ? compilerFlags(t, toolchain) : {}, {
    PATH: path,
    PREFIX: t,
    CONDA_PREFIX: t,
    PKG_NAME: record.name,
    PKG_VERSION: record.version,
    PKG_BUILDNUM: String(record.build_number),
    PKG_BUILD_STRING: record.build_string,
    RECIPE_DIR: record.recipe_dir,
    SRC_DIR: ws.srcDir,
    SHLIB_EXT: '.so',
    target_platform: toolchain.target,
    build_platform: process.arch === 'arm64' ? 'linux-aarch64' : 'linux-64',
    HOST: toolchain.host,
    BUILD: toolchain.build,
    CPU_COUNT: ctx.env.CPU_COUNT ?? String(availableParallelism()),
    PKG_CONFIG_PATH: pkgconfig,
    PKG_CONFIG_LIBDIR: pkgconfig,
    QEMU_LD_PREFIX: toolchain.sysroot,
  });
  if (toolchain.cross) env.CONDA_BUILD_CROSS_COMPILATION = '1';
  // The test runs in a directory of its own holding test/files (from the recipe) and test/source_files.
  const cwd = join(ws.root, 'test_tmp');
  rmSync(cwd, { recursive: true, force: true });
  makeDirs(cwd);
  await copyInto(record.recipe_dir, record.test.files, cwd, what, 'test/files');
  await copyInto(ws.srcDir, record.test.source_files, cwd, what, 'test/source_files');
  const file = join(ws.root, `test-${record.name}.sh`);
  writeFileSync(file, `set -x\n${script.join('\n')}\n`);
  logLine(ws.log, `== test ${what} (${packages.map((p) => p.filename).join(', ')})`);
  const inputs = ctx.testCache
    ? testKey({
        script: readFileSync(file, 'utf8'),
        recipeDir: record.recipe_dir,
        testDir: cwd,
        testPrefix: t,
        toolsDir: tools,
        env,
        workspacePaths: { test_prefix: t, work: ws.srcDir, root: ws.root, recipe: record.recipe_dir },
        identities: [toolchain.identity, testTools.toolchain.identity],
        emulator: emulated ? toolchain.emulator : null,
      })
    : { uncached: '--no-test-cache' };
  if ('key' in inputs) {
    const before = ctx.store.refs.get(TESTED_NS, inputs.key);
    if (before && ctx.store.has(before.digest as Digest)) {
      logLine(
        ws.log,
        `== test ${what}: passed before with the same inputs (test inputs ${inputs.key}), not run again; its output: accel store get ${before.digest}`,
      );
      return { seconds: 0, ran: false, cached: true };
    }
  } else {
    logLine(ws.log, `== test ${what}: not taken from the test cache: ${inputs.uncached}`);
  }
  const from = statSync(ws.log).size;
  const started = performance.now();
  const code = await runScript(file, { cwd, env, log: ws.log, wrap });
  if (code !== 0) {
    // With `set -x`, the last traced command is the one that failed.
    const last = logTail(ws.log, 200)
      .split('\n')
      .findLast((l) => l.startsWith('+ '));
    const at = last ? `, at \`${last.slice(2, 200)}\`` : '';
    throw new AccelError('ACCEL_CONDA_TEST_FAILED', `${what}: tests failed (exit ${code})${at}\n${logTail(ws.log)}`, {
      hint: 'nothing was published',
    });
  }
  const seconds = (performance.now() - started) / 1000;
  if ('key' in inputs) {
    // The test's own output is what the cache keeps: a later build that takes the result can show it.
    const out = readFileSync(ws.log).subarray(from);
    const blob = await ctx.store.putBuffer(out);
    ctx.store.refs.set(TESTED_NS, inputs.key, blob.digest, { test: what, seconds });
  }
  return { seconds, ran: true, cached: false };
}

interface TestOutcome {
  seconds: number;
  /** The tests ran (and passed). */
  ran: boolean;
  /** They passed before with the same inputs, and were not run again. */
  cached: boolean;
}

/** Copies the files a test names (globs allowed, directories whole) from `from` into the test directory. */
async function copyInto(from: string, patterns: string[], to: string, what: string, key: string): Promise<void> {
  for (const pattern of patterns) {
    const matches = /[*?[]/.test(pattern)
      ? readdirSync(from, { recursive: true, encoding: 'utf8' }).filter((f) => matchesGlob(f, pattern))
      : existsSync(join(from, pattern))
        ? [pattern]
        : [];
    if (matches.length === 0) {
      throw new AccelError('ACCEL_CONDA_TEST_FILES', `${what}: ${key} names ${pattern}, which ${from} does not have`, {
        hint: `${key} paths are relative to ${key === 'test/files' ? 'the recipe directory' : 'the unpacked source'}`,
      });
    }
    for (const m of matches) {
      makeDirs(dirname(join(to, m)));
      await run('cp', ['-a', join(from, m), join(to, m)]);
    }
  }
}

/** One shim per executable of the target's architecture: `exec qemu -L <sysroot> <file> "$@"`. */
function writeShims(bin: string, shims: string, toolchain: Toolchain): void {
  makeDirs(shims);
  const wanted = ELF_MACHINES[toolchain.cpu];
  let names: string[] = [];
  try {
    names = readdirSync(bin);
  } catch {
    return;
  }
  for (const name of names) {
    const file = join(bin, name);
    let machine: number | undefined;
    try {
      machine = elfMachine(file);
    } catch {
      continue;
    }
    if (machine !== wanted) continue;
    if (!toolchain.emulator) {
      throw new AccelError('ACCEL_CONDA_NO_TOOLCHAIN', `no qemu to run ${toolchain.target} tests`, {
        hint: 'install it with: apt-get install -y qemu-user-static (or pass --test skip)',
      });
    }
    const shim = join(shims, name);
    const q = shellQuote;
    writeFileSync(shim, `#!/bin/sh\nexec ${q(toolchain.emulator)} -L ${q(toolchain.sysroot)} ${q(file)} "$@"\n`);
    chmodSync(shim, 0o755);
  }
}

/** One shell word, whatever the path holds ($, backquotes, quotes): single quotes, each ' written '\''. */
function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
