import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { AccelError } from '../../core/errors.ts';
import type { OutputRecord } from '../record.ts';
import { type ChannelPackage, readChannel, solve } from './channel-packages.ts';
import type { BuildContext } from './context.ts';
import { resolveToolchain, type Toolchain } from './cross-toolchain.ts';
import { channelSubdirs } from './prepare.ts';
import { logLine, logTail, runScript } from './run-script.ts';
import type { Workspace } from './workspace.ts';

/** A package built in this run and not yet published: tests install it from its build output. */
export interface StagedPackage {
  record: ChannelPackage;
  path: string;
}

const EM_AARCH64 = 183;
const EM_X86_64 = 62;

/** The ELF machine of a file (`e_machine`), or undefined when it is not an ELF file. */
export function elfMachine(file: string): number | undefined {
  const head = Buffer.alloc(20);
  const fd = openSync(file, 'r');
  try {
    if (readSync(fd, head, 0, 20, 0) < 20) return undefined;
  } finally {
    closeSync(fd);
  }
  if (head.readUInt32BE(0) !== 0x7f454c46) return undefined;
  return head.readUInt16LE(18);
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
}): Promise<number> {
  const { record, staged, ws, toolchain, ctx } = options;
  const script = [...record.test.commands];
  const runTest = join(record.recipe_dir, 'run_test.sh');
  if (existsSync(runTest)) script.push(`bash -e ${shellQuote(runTest)}`);
  if (script.length === 0 || ctx.test === 'skip') return 0;
  const what = `${record.name}-${record.version}-${record.build_string}`;
  rmSync(ws.testPrefix, { recursive: true, force: true });
  mkdirSync(ws.testPrefix, { recursive: true });
  const channel = readChannel(ctx.channel, channelSubdirs(ctx.targetPlatform));
  const stagedNames = new Set(staged.map((s) => s.record.filename));
  const pool = [...staged.map((s) => s.record), ...channel.filter((p) => !stagedNames.has(p.filename))];
  // Test requirements the machine provides (make, a compiler to build a test program) are not packages.
  const fromChannel = resolveToolchain(ctx.targetPlatform, record.test.requires, ctx.env).missing;
  const solved = solve([`${record.name} ${record.version} ${record.build_string}`, ...fromChannel], pool);
  if (solved.unsatisfied.length > 0) {
    throw new AccelError(
      'ACCEL_CONDA_UNSATISFIABLE',
      `${what}: the test environment cannot be made:\n  ${solved.unsatisfied.join('\n  ')}`,
      { hint: 'run requirements and test/requires must be in the channel or built in the same run' },
    );
  }
  for (const p of solved.packages) {
    const local = staged.find((s) => s.record.filename === p.filename);
    await ctx.tools.install(local ? local.path : join(ctx.channel, p.subdir, p.filename), ws.testPrefix);
  }
  const env: Record<string, string> = {};
  for (const k of ['HOME', 'LANG', 'LC_ALL', 'TMPDIR', 'USER']) {
    const v = ctx.env[k];
    if (v !== undefined) env[k] = v;
  }
  let path = `${join(ws.testPrefix, 'bin')}:${ctx.env.PATH ?? '/usr/bin:/bin'}`;
  if (ctx.test === 'emulated' && toolchain.cross) {
    const shims = join(ws.root, '_test_shims');
    writeShims(join(ws.testPrefix, 'bin'), shims, toolchain);
    path = `${shims}:${path}`;
    env.QEMU_LD_PREFIX = toolchain.sysroot;
  }
  Object.assign(env, { PATH: path, PREFIX: ws.testPrefix, CONDA_PREFIX: ws.testPrefix, PKG_NAME: record.name });
  const file = join(ws.root, `test-${record.name}.sh`);
  writeFileSync(file, `set -x\n${script.join('\n')}\n`);
  logLine(ws.log, `== test ${what} (${solved.packages.map((p) => p.filename).join(', ')})`);
  const started = performance.now();
  const code = await runScript(file, { cwd: ws.testPrefix, env, log: ws.log });
  if (code !== 0) {
    throw new AccelError('ACCEL_CONDA_TEST_FAILED', `${what}: tests failed (exit ${code})\n${logTail(ws.log)}`, {
      hint: 'nothing was published',
    });
  }
  return (performance.now() - started) / 1000;
}

/** One shim per executable of the target's architecture: `exec qemu -L <sysroot> <file> "$@"`. */
function writeShims(bin: string, shims: string, toolchain: Toolchain): void {
  mkdirSync(shims, { recursive: true });
  const wanted = toolchain.host.startsWith('aarch64') ? EM_AARCH64 : EM_X86_64;
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
