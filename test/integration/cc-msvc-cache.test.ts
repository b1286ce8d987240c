// `accel cc` with the MSVC driver: Debian's clang-cl compiling for x86_64-pc-windows-msvc (project headers only,
// /X: no INCLUDE search needed) through the cache, as a build would call it.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test as nodeTest, type TestContext } from 'node:test';
import { findClangCl, MAIN, ok, runAccel, runCommand, tempDir } from '../helpers.ts';

const CLANG_CL = findClangCl();
const SKIP = CLANG_CL ? false : 'missing tool: clang-cl (install clang-tools, or run bash scripts/setup.sh --test)';
const test = (name: string, fn: (t: TestContext) => Promise<void>) => nodeTest(name, { skip: SKIP }, fn);

const BASE = ['--target=x86_64-pc-windows-msvc', '/nologo', '/Brepro'];

function project(t: TestContext) {
  const dir = tempDir(t, 'accel-msvc-cache-');
  const src = join(dir, 'proj');
  mkdirSync(join(src, 'inc'), { recursive: true });
  mkdirSync(join(src, 'out'));
  writeFileSync(join(src, 'inc', 'a.h'), '#pragma once\n#include "b.h"\n#define A 1\n');
  writeFileSync(join(src, 'inc', 'b.h'), '#pragma once\nint b(void);\n');
  writeFileSync(
    join(src, 'main.c'),
    '#include "a.h"\n#pragma message("hello from main.c")\nint main(void) { return A + b(); }\n',
  );
  const home = join(dir, 'home');
  const accel = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    runCommand(process.execPath, [MAIN, '--home', home, 'cc', ...args], { cwd: src, env });
  /** One compile through the cache: its status (from the counters' change), stdout and stderr. */
  let before: Record<string, number> = {};
  const cc = async (args: string[], env: NodeJS.ProcessEnv = {}) => {
    const r = await accel(['--', CLANG_CL as string, ...BASE, ...args], env);
    ok(r, `accel cc -- clang-cl ${args.join(' ')}`);
    const after = await counters();
    const moved = Object.keys(after).filter((k) => after[k] !== before[k]);
    before = after;
    return { status: moved.join(','), stdout: r.stdout.toString(), stderr: r.stderr };
  };
  const counters = async (): Promise<Record<string, number>> => {
    const r = await runAccel(['--home', home, '--json', 'cc', '--stats']);
    return JSON.parse(r.stdout.toString()).counters ?? {};
  };
  const plain = async (args: string[], env: NodeJS.ProcessEnv = {}) => {
    const r = await runCommand(CLANG_CL as string, [...BASE, ...args], { cwd: src, env });
    ok(r, `clang-cl ${args.join(' ')}`);
    return { stdout: r.stdout.toString(), stderr: r.stderr };
  };
  const obj = (name: string) => readFileSync(join(src, 'out', name));
  return { dir, src, home, accel, cc, plain, obj };
}

test('accel cc -- clang-cl: a miss, then a hit with the same object and output; another /Fo hits; a header change misses', async (t) => {
  const p = project(t);
  const args = (out: string) => ['/X', '/c', '/Iinc', '/O2', `/Foout/${out}`, 'main.c'];
  await p.plain(args('plain.obj'));
  const cold = await p.cc(args('a.obj'));
  assert.equal(cold.status, 'miss');
  assert.deepEqual(p.obj('a.obj'), p.obj('plain.obj'), 'the object is what clang-cl makes');
  // The cache added /showIncludes to learn the headers: the build sees none of its lines, only the compiler's own.
  assert.doesNotMatch(cold.stdout, /Note: including file/);
  const own = await p.plain(args('plain.obj'));
  assert.equal(cold.stdout, own.stdout);
  assert.match(cold.stderr, /hello from main\.c/);

  rmSync(join(p.src, 'out', 'a.obj'));
  const warm = await p.cc(args('a.obj'));
  assert.equal(warm.status, 'hit');
  assert.deepEqual(p.obj('a.obj'), p.obj('plain.obj'));
  assert.equal(warm.stdout, cold.stdout);
  assert.equal(warm.stderr, cold.stderr, 'the warning is replayed');

  const other = await p.cc(args('b.obj'));
  assert.equal(other.status, 'hit', 'the object path is not in the key');
  assert.deepEqual(p.obj('b.obj'), p.obj('plain.obj'));

  writeFileSync(join(p.src, 'inc', 'b.h'), '#pragma once\nint b(void);\nint c(void);\n');
  assert.equal((await p.cc(args('a.obj'))).status, 'miss', 'a nested header changed');
  assert.equal((await p.cc(args('a.obj'))).status, 'hit');
  const why = await p.accel(['--explain', '--', CLANG_CL as string, ...BASE, ...args('a.obj'), '/DX']);
  assert.equal(
    why.stdout.toString().trim(),
    'differs from the nearest entry: argument "/D X" is new (the nearest entry has no such one)',
  );
});

test('accel cc -- clang-cl /showIncludes: the build’s own header lines are stored and replayed on a hit', async (t) => {
  const p = project(t);
  const args = (out: string) => ['/X', '/c', '/Iinc', '/showIncludes', `/Foout/${out}`, 'main.c'];
  const own = await p.plain(args('plain.obj'));
  assert.match(own.stdout, /^Note: including file: inc\/a\.h\nNote: including file: {2}inc\/b\.h\n/);
  const cold = await p.cc(args('a.obj'));
  assert.equal(cold.status, 'miss');
  assert.equal(cold.stdout, own.stdout);
  const warm = await p.cc(args('a.obj'));
  assert.equal(warm.status, 'hit');
  assert.equal(warm.stdout, own.stdout, 'Ninja’s deps = msvc reads these lines on every build');
  assert.deepEqual(p.obj('a.obj'), p.obj('plain.obj'));
  // Asking for the lines is part of the key: the same compile without them is another entry.
  const quiet = await p.cc(args('a.obj').filter((a) => a !== '/showIncludes'));
  assert.equal(quiet.status, 'miss');
  assert.doesNotMatch(quiet.stdout, /Note: including file/);

  // The native client (what CMake's launcher and the masquerade links run) through the daemon: the same hit.
  ok(await runAccel(['--home', p.home, 'cc', '--masquerade-dir']));
  t.after(async () => {
    await runAccel(['--home', p.home, 'cc', 'daemon', '--stop']);
  });
  const client = join(p.home, 'bin', 'accel-cc');
  const r = await runCommand(client, [CLANG_CL as string, ...BASE, ...args('c.obj')], {
    cwd: p.src,
    env: { ACCEL_CC_DAEMON_IDLE_TIMEOUT: '60' },
  });
  ok(r, 'accel-cc clang-cl');
  assert.equal(r.stdout.toString(), own.stdout);
  assert.deepEqual(p.obj('c.obj'), p.obj('plain.obj'));
  const counters = JSON.parse((await runAccel(['--home', p.home, '--json', 'cc', '--stats'])).stdout.toString());
  assert.equal(counters.counters.hit, 2, 'the client’s compile was a hit');
});

test('accel cc -- clang-cl: INCLUDE is in the key (without /X); CL and _CL_ are read as the compiler reads them', async (t) => {
  const p = project(t);
  mkdirSync(join(p.src, 'inc2'));
  writeFileSync(join(p.src, 'inc2', 'a.h'), '#pragma once\n#include "b.h"\n#define A 2\n');
  writeFileSync(join(p.src, 'inc2', 'b.h'), '#pragma once\nint b(void);\n');
  const args = ['/c', '/Foout/a.obj', 'main.c'];
  const first = await p.cc(args, { INCLUDE: join(p.src, 'inc') });
  assert.equal(first.status, 'miss');
  const one = p.obj('a.obj');
  assert.equal((await p.cc(args, { INCLUDE: join(p.src, 'inc') })).status, 'hit');
  const second = await p.cc(args, { INCLUDE: join(p.src, 'inc2') });
  assert.equal(second.status, 'miss', 'another INCLUDE finds other headers');
  assert.notDeepEqual(p.obj('a.obj'), one);
  await p.plain(['/c', '/Foout/plain.obj', 'main.c'], { INCLUDE: join(p.src, 'inc2') });
  assert.deepEqual(p.obj('a.obj'), p.obj('plain.obj'));
  const why = await p.accel(['--explain', '--', CLANG_CL as string, ...BASE, ...args], { INCLUDE: '/nowhere' });
  assert.match(why.stdout.toString(), /environment variable INCLUDE differs \(now "\/nowhere"\)/);
  // `_CL_` adds arguments after the command line, as the compiler does: the same compile as writing them there.
  const compile = ['/X', '/Iinc', '/c', '/Foout/a.obj', 'main.c'];
  const viaEnv = await p.cc(compile, { _CL_: '/DEXTRA=1' });
  assert.equal(viaEnv.status, 'miss');
  assert.equal((await p.cc([...compile, '/DEXTRA=1'])).status, 'hit', '_CL_=/DEXTRA=1 is /DEXTRA=1 at the end');
  assert.equal((await p.cc(compile)).status, 'miss', 'without it, another compile');
});
