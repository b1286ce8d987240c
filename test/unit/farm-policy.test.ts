import assert from 'node:assert/strict';
import { test } from 'node:test';
import { checkCompiler, jobEnv, mapArgs, Refusal } from '../../src/farm/policy.ts';

const roots = ['/src/proj'];
const root = '/home/w/sandbox/jobs/job-1';
const map = (args: string[], cwd = '/src/proj') => mapArgs({ args, cwd, roots, root });

function refused(fn: () => unknown, code: string, re: RegExp) {
  assert.throws(fn, (err: unknown) => err instanceof Refusal && err.code === code && re.test(err.message));
}

test('mapArgs: inputs under the roots move into the sandbox, relative names stay, outputs land in the job', () => {
  const m = map([
    '-Iinclude',
    '-I/src/proj/third_party',
    '-isystem',
    '/usr/include/foo',
    '-O2',
    '-DX=/etc/passwd',
    '-MMD',
    '-c',
    'src/a.c',
    '-o',
    'build/a.o',
  ]);
  assert.deepEqual(m.args, [
    `-ffile-prefix-map=${root}=`,
    '-Iinclude',
    `-I${root}/src/proj/third_party`,
    '-isystem',
    '/usr/include/foo',
    '-O2',
    '-DX=/etc/passwd',
    '-MMD',
    '-c',
    'src/a.c',
    '-o',
    'build/a.o',
  ]);
  assert.deepEqual(m.outputs, ['/src/proj/build/a.o', '/src/proj/build/a.d']);
  assert.deepEqual(m.depFiles, ['/src/proj/build/a.d']);
  const withMf = map(['-c', 'a.c', '-o', '/tmp/x/a.o', '-MD', '-MF', '/home/me/.cache/accel/tmp/dep.1']);
  assert.deepEqual(withMf.outputs, ['/tmp/x/a.o', '/home/me/.cache/accel/tmp/dep.1']);
  assert.ok(withMf.args.includes(`${root}/home/me/.cache/accel/tmp/dep.1`));
  // A user's prefix map names client paths; it must match the sandbox names.
  assert.ok(map(['-ffile-prefix-map=/src/proj=.', '-c', 'a.c']).args.includes(`-ffile-prefix-map=${root}/src/proj=.`));
});

test('mapArgs refuses code loading, @files, and inputs outside the roots; -o cannot escape the job', () => {
  for (const arg of [
    '-fplugin=/x.so',
    '-specs=x',
    '-B/tmp/evil',
    '-wrapper',
    '-Xclang',
    '@/tmp/args',
    '-fpass-plugin=x',
    // Files written where the client says, or options handed on where this policy cannot see them.
    '-Wp,-MD,/home/worker/.ssh/authorized_keys',
    '-Wa,-adhln=/tmp/listing',
    '-Wl,-plugin,/x.so',
    '-Xpreprocessor',
    '--output=/home/worker/x.o',
    '-fdump-tree-original=/home/worker/d',
    '-fopt-info-all=/home/worker/o',
    '-fprofile-use=/home/worker/p',
  ]) {
    refused(() => map([arg, '-c', 'a.c']), 'ACCEL_FARM_ARG_REFUSED', /refused on the farm/);
  }
  refused(() => map(['-I/etc', '-c', 'a.c']), 'ACCEL_FARM_OUTSIDE_TREE', /-I \/etc is outside/);
  refused(() => map(['-include', '/root/secret.h', '-c', 'a.c']), 'ACCEL_FARM_OUTSIDE_TREE', /outside/);
  refused(() => map(['-c', '../../etc/shadow.c']), 'ACCEL_FARM_OUTSIDE_TREE', /source/);
  refused(() => map(['--sysroot=/opt/sdk', '-c', 'a.c']), 'ACCEL_FARM_OUTSIDE_TREE', /--sysroot/);
  const escaping = map(['-c', 'a.c', '-o', '../../../../../../etc/passwd']);
  assert.deepEqual(escaping.outputs, ['/etc/passwd']);
  assert.ok(escaping.args.includes(`${root}/etc/passwd`), 'an output always lands inside the job root');
});

test('checkCompiler: only bare names on the allowlist', () => {
  checkCompiler('gcc', ['gcc', 'g++']);
  refused(() => checkCompiler('python3', ['gcc']), 'ACCEL_FARM_COMPILER_REFUSED', /python3/);
  refused(() => checkCompiler('/tmp/gcc', ['gcc', '/tmp/gcc']), 'ACCEL_FARM_COMPILER_REFUSED', /allowlist/);
});

test('jobEnv: only locale and reproducibility variables travel, never PATH or LD_PRELOAD', () => {
  const env = {
    LANG: 'de_DE.UTF-8',
    PATH: '/evil',
    LD_PRELOAD: '/x.so',
    GCC_EXEC_PREFIX: '/y',
    SOURCE_DATE_EPOCH: '1',
  };
  assert.deepEqual(jobEnv(env), { LANG: 'de_DE.UTF-8', SOURCE_DATE_EPOCH: '1' });
});

test('mapArgs keeps the prefix maps a reproducible build uses, though they name absolute paths', () => {
  const m = map(['-fdebug-prefix-map=/src/proj=.', '-fmacro-prefix-map=/src/proj=.', '-c', 'a.c']);
  assert.ok(m.args.includes(`-fdebug-prefix-map=${root}/src/proj=.`));
  assert.ok(m.args.includes(`-fmacro-prefix-map=${root}/src/proj=.`));
});
