// The MSVC model against a real MSVC driver: Debian's clang-cl compiling for x86_64-pc-windows-msvc with
// project headers only (/X: no INCLUDE, no Windows SDK). Checks that /showIncludes names exactly the headers the
// compiler read, that what the model keys on decides the object and what it leaves out does not, that the
// object paths it predicts are where the driver writes, and that objects are reproducible with /Brepro.
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { test as nodeTest, type TestContext } from 'node:test';
import { parseDepFile } from '../../src/compiler/depfile.ts';
import { classifyMsvc, type MsvcCompile } from '../../src/compiler/msvc.ts';
import { msvcFarmVerdict } from '../../src/compiler/msvc-allowed.ts';
import { parseMsvcArgs } from '../../src/compiler/msvc-options.ts';
import {
  probeShowIncludesPrefix,
  SHOW_INCLUDES_PREFIX,
  splitShowIncludes,
} from '../../src/compiler/msvc-show-includes.ts';
import { findClangCl, ok, runCommand, sha256, tempDir } from '../helpers.ts';

const CLANG_CL = findClangCl();
const SKIP = CLANG_CL ? false : 'missing tool: clang-cl (install clang-tools, or run bash scripts/setup.sh --test)';
const test = (name: string, fn: (t: TestContext) => Promise<void>) => nodeTest(name, { skip: SKIP }, fn);

/** Always: cross-compile for Windows, ignore INCLUDE (no SDK here), no banner. */
const BASE = ['--target=x86_64-pc-windows-msvc', '/nologo', '/X'];

function project(t: TestContext): string {
  const dir = tempDir(t, 'accel-msvc-');
  mkdirSync(join(dir, 'inc'));
  mkdirSync(join(dir, 'out'));
  writeFileSync(join(dir, 'inc', 'a.h'), '#pragma once\n#include "b.h"\n#define A 1\n');
  writeFileSync(join(dir, 'inc', 'b.h'), '#pragma once\nint b(void);\n');
  writeFileSync(join(dir, 'inc', 'unused.h'), '#error never included\n');
  writeFileSync(join(dir, 'local.h'), '#define LOCAL 2\n');
  writeFileSync(
    join(dir, 'main.c'),
    '#include "a.h"\n#include "local.h"\nint main(void) { return A + LOCAL + VALUE + b(); }\n',
  );
  return dir;
}

function classified(args: string[], cwd: string): MsvcCompile {
  const c = classifyMsvc(CLANG_CL as string, args, cwd);
  assert.equal(c.kind, 'cacheable', JSON.stringify(c));
  return (c as Extract<typeof c, { kind: 'cacheable' }>).compile;
}

async function compile(args: string[], cwd: string) {
  const r = await runCommand(CLANG_CL as string, args, { cwd });
  ok(r, `clang-cl ${args.join(' ')}`);
  return r;
}

/** What the MSVC model feeds the key before compiling: language, source, its bytes, key arguments, key env. */
function keyOf(c: MsvcCompile, cwd: string): string {
  const source = sha256(readFileSync(resolve(cwd, c.source)));
  return sha256(JSON.stringify([c.mode, c.language, c.keySource, source, c.keyArgs, c.keyEnv]));
}

test('/showIncludes names exactly the headers clang-cl read (its own depfile agrees); nesting and order kept', async (t) => {
  const dir = project(t);
  const args = [...BASE, '/c', '/Iinc', '/DVALUE=3', '/showIncludes', '/Foout/main.obj', 'main.c'];
  const r = await compile(args, dir);
  const { headers, rest } = splitShowIncludes(r.stdout);
  assert.deepEqual(headers, ['inc/a.h', 'inc/b.h', './local.h']);
  assert.equal(rest.length, 0, 'nothing but header lines on stdout');
  // The truth from another channel: the depfile clang writes for the same compile.
  await compile(
    [...BASE, '/c', '/Iinc', '/DVALUE=3', '/Foout/dep.obj', '/clang:-MD', '/clang:-MF', '/clang:main.d', 'main.c'],
    dir,
  );
  const deps = parseDepFile(readFileSync(join(dir, 'main.d'), 'utf8')).deps.filter((d) => d !== 'main.c');
  const real = (ps: string[]) => ps.map((p) => realpathSync(resolve(dir, p))).sort();
  assert.deepEqual(real(headers), real(deps));
  // Every argument of this compile is one the farm may run.
  for (const a of parseMsvcArgs(args, { slashPaths: true })) assert.equal(msvcFarmVerdict(a), true, a.raw.join(' '));
});

test('without the user’s /showIncludes, the stripped output is what the compile prints without it', async (t) => {
  const dir = project(t);
  writeFileSync(join(dir, 'warn.c'), '#include "local.h"\n#pragma message("hello from the source")\nint x = LOCAL;\n');
  const plain = await compile([...BASE, '/c', '/Foout/w1.obj', 'warn.c'], dir);
  const probed = await compile([...BASE, '/c', '/showIncludes', '/Foout/w2.obj', 'warn.c'], dir);
  const split = splitShowIncludes(probed.stdout);
  assert.deepEqual(split.headers, ['./local.h']);
  assert.deepEqual(split.rest, plain.stdout);
  assert.equal(probed.stderr, plain.stderr.replace(/w1/g, 'w2'));
});

test('the key: same for another output path (and so is the object); a define or a header changes the result', async (t) => {
  const dir = project(t);
  const one = [...BASE, '/c', '/Brepro', '/Iinc', '/DVALUE=3', '/Foout/one.obj', 'main.c'];
  const two = [...BASE, '/c', '/Brepro', '-I', 'inc', '-DVALUE=3', '/Foout/two.obj', 'main.c'];
  const c1 = classified(one, dir);
  const c2 = classified(two, dir);
  assert.equal(keyOf(c1, dir), keyOf(c2, dir), 'output path and spelling are not in the key');
  await compile(one, dir);
  await compile(two, dir);
  const obj = (name: string) => readFileSync(join(dir, 'out', name));
  assert.deepEqual(obj('one.obj'), obj('two.obj'), 'the object does not depend on its path either');

  const define = one.map((a) => (a === '/DVALUE=3' ? '/DVALUE=4' : a)).map((a) => a.replace('one.obj', 'def.obj'));
  assert.notEqual(keyOf(classified(define, dir), dir), keyOf(c1, dir));
  await compile(define, dir);
  assert.notDeepEqual(obj('def.obj'), obj('one.obj'), 'and it does decide the object');

  // A header's content is not in the key: it is in the manifest entry, the headers /showIncludes named with
  // their digests. Changing one changes that entry and the object, and leaves the key as it was.
  const entry = async (out: string) => {
    const r = await compile([...one.filter((a) => !a.startsWith('/Fo')), '/showIncludes', `/Foout/${out}`], dir);
    return splitShowIncludes(r.stdout).headers.map((h) => [h, sha256(readFileSync(resolve(dir, h)))]);
  };
  const before = await entry('h1.obj');
  writeFileSync(join(dir, 'inc', 'a.h'), '#pragma once\n#include "b.h"\n#define A 5\n');
  const after = await entry('h2.obj');
  assert.deepEqual(
    before.map((e) => e[0]),
    after.map((e) => e[0]),
  );
  assert.notDeepEqual(before, after);
  assert.notDeepEqual(obj('h1.obj'), obj('h2.obj'));
  assert.equal(keyOf(classified(one, dir), dir), keyOf(c1, dir));
});

test('the object lands where the model says: default, /Fo file, /Fo dir/, no extension, /o, @file', async (t) => {
  const dir = project(t);
  writeFileSync(join(dir, 'args.rsp'), '/c /Iinc "/DVALUE=5" /Foout/from-rsp.obj main.c');
  const cases: string[][] = [
    ['/c', '/Iinc', '/DVALUE=1', 'main.c'],
    ['/c', '/Iinc', '/DVALUE=1', '/Foout/named.obj', 'main.c'],
    ['/c', '/Iinc', '/DVALUE=1', '/Foout/', 'main.c'],
    ['/c', '/Iinc', '/DVALUE=1', '/Foout/noext', 'main.c'],
    ['/c', '/Iinc', '/DVALUE=1', 'main.c', '/o', 'out/via-o.obj'],
    ['@args.rsp'],
  ];
  const objects = () =>
    [...readdirSync(dir), ...readdirSync(join(dir, 'out')).map((f) => `out/${f}`)].filter((f) => f.endsWith('.obj'));
  for (const args of cases) {
    const c = classified([...BASE, ...args], dir);
    const before = new Set(objects());
    await compile([...BASE, ...args], dir);
    assert.deepEqual(
      objects().filter((f) => !before.has(f)),
      [c.output],
      args.join(' '),
    );
  }
});

test('objects: reproducible with /Brepro; without it only the COFF time stamp differs; /Z7 names the object', async (t) => {
  const dir = project(t);
  const args = (out: string, ...extra: string[]) => [
    ...BASE,
    '/c',
    '/Iinc',
    '/DVALUE=1',
    ...extra,
    `/Foout/${out}`,
    'main.c',
  ];
  await compile(args('r1.obj', '/Brepro'), dir);
  await compile(args('r2.obj', '/Brepro'), dir);
  const obj = (name: string) => readFileSync(join(dir, 'out', name));
  assert.deepEqual(obj('r1.obj'), obj('r2.obj'));
  assert.equal(obj('r1.obj').readUInt32LE(4), 0, '/Brepro writes no time');
  // Without /Brepro the COFF header's TimeDateStamp (bytes 4-7) holds the time of the compile: a hit hands
  // back the first compile's object, which differs from a fresh one only there (link.exe ignores it).
  await compile(args('t1.obj'), dir);
  const stamped = obj('t1.obj');
  assert.ok(stamped.readUInt32LE(4) > 1_600_000_000, 'a time stamp');
  const masked = Buffer.from(stamped);
  masked.writeUInt32LE(0, 4);
  assert.deepEqual(masked, obj('r1.obj'));
  // CodeView's build record holds the object's absolute path: two /Z7 objects differing only in /Fo differ,
  // so with debug information the model keys on the output path.
  await compile(args('d1.obj', '/Brepro', '/Z7'), dir);
  await compile(args('d2.obj', '/Brepro', '/Z7'), dir);
  assert.ok(
    obj('d1.obj').includes(join(realpathSync(dir), 'out', 'd1.obj')) ||
      obj('d1.obj').includes(join(dir, 'out', 'd1.obj')),
  );
  assert.notDeepEqual(obj('d1.obj'), obj('d2.obj'));
  const k1 = classified(args('d1.obj', '/Brepro', '/Z7'), dir);
  const k2 = classified(args('d2.obj', '/Brepro', '/Z7'), dir);
  assert.equal(k1.debug, true);
  assert.notEqual(keyOf(k1, dir), keyOf(k2, dir));
});

test('the /showIncludes prefix, probed from the compiler itself (cl.exe translates it; clang-cl does not)', async (t) => {
  const scratch = tempDir(t);
  const prefix = await probeShowIncludesPrefix(CLANG_CL as string, {
    env: process.env,
    scratch,
    extraArgs: ['--target=x86_64-pc-windows-msvc'],
  });
  assert.equal(prefix, SHOW_INCLUDES_PREFIX);
  assert.deepEqual(readdirSync(scratch), [], 'the probe cleans up');
});
