// The MSVC driver's command line: cl's spellings parsed into the shared model, response files and CL's
// environment variables split by the Windows rules, and the farm's allowlist over the result.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { msvcFarmVerdict } from '../../src/compiler/msvc-allowed.ts';
import { parseMsvcArgs } from '../../src/compiler/msvc-options.ts';
import { expandMsvcResponseFiles, splitWindowsCommandLine } from '../../src/compiler/msvc-response.ts';
import { tempDir } from '../helpers.ts';

/** [option, kind, value] of each parsed argument. */
const shape = (args: string[]) => parseMsvcArgs(args, { slashPaths: true }).map((a) => [a.option, a.kind, a.value]);

test('`/` and `-` spell the same option; values joined or separate per cl’s rules', () => {
  assert.deepEqual(shape(['/c', '-c', '/Iinc', '/I', 'inc2', '-Iinc3', '/DX=1', '/D', 'Y', '-UZ', '/U', 'W']), [
    ['/c', 'flag', undefined],
    ['/c', 'flag', undefined],
    ['/I', 'input-path', 'inc'],
    ['/I', 'input-path', 'inc2'],
    ['/I', 'input-path', 'inc3'],
    ['/D', 'value', 'X=1'],
    ['/D', 'value', 'Y'],
    ['/U', 'value', 'Z'],
    ['/U', 'value', 'W'],
  ]);
  // /Fo is joined only: the next argument is a source, not the object's name.
  assert.deepEqual(shape(['/Foout.obj', '/Fo', 'a.c']), [
    ['/Fo', 'output-path', 'out.obj'],
    ['/Fo', 'output-path', ''],
    ['', 'source', 'a.c'],
  ]);
  // cl's newer colon form takes it joined or separate.
  assert.deepEqual(shape(['/Fo:', 'x.obj', '/Fo:y.obj']), [
    ['/Fo:', 'output-path', 'x.obj'],
    ['/Fo:', 'output-path', 'y.obj'],
  ]);
  // Case matters: /C keeps comments, /c compiles; /MD is the runtime library, not gcc's -MD.
  assert.deepEqual(shape(['/C', '-MD', '/MDd', '/MT', '/MTd']), [
    ['/C', 'flag', undefined],
    ['/MD', 'flag', undefined],
    ['/MDd', 'flag', undefined],
    ['/MT', 'flag', undefined],
    ['/MTd', 'flag', undefined],
  ]);
});

test('exact flags win over value options that share their start; longest value option wins', () => {
  assert.deepEqual(shape(['/Brepro', '/B1c1xx.dll', '/Gs', '/Gs4096', '/Zp', '/Zp8', '/W4', '/wd4996', '/w14062']), [
    ['/Brepro', 'flag', undefined],
    ['/B', 'input-path', '1c1xx.dll'],
    ['/Gs', 'flag', undefined],
    ['/Gs', 'value', '4096'],
    ['/Zp', 'flag', undefined],
    ['/Zp', 'value', '8'],
    ['/W4', 'flag', undefined],
    ['/wd', 'value', '4996'],
    ['/w1', 'value', '4062'],
  ]);
  assert.deepEqual(shape(['/external:I', 'dep/inc', '-external:W0', '/external:anglebrackets', '/EHsc', '/O2']), [
    ['/external:I', 'input-path', 'dep/inc'],
    ['/external:W', 'value', '0'],
    ['/external:anglebrackets', 'flag', undefined],
    ['/EH', 'value', 'sc'],
    ['/O2', 'flag', undefined],
  ]);
  assert.deepEqual(shape(['/std:c++17', '/Zc:__cplusplus', '/FIpch.h', '/FI', 'force.h', '/imsvc', '/sdk/inc']), [
    ['/std:', 'value', 'c++17'],
    ['/Zc:', 'value', '__cplusplus'],
    ['/FI', 'input-path', 'pch.h'],
    ['/FI', 'input-path', 'force.h'],
    ['/imsvc', 'input-path', '/sdk/inc'],
  ]);
});

test('sources: plain, absolute (a `/` path that names no option), /Tc and /Tp, after `--`', () => {
  // On Windows (cl.exe) an unknown `/x` is an option cl ignores with a warning, never a path.
  assert.deepEqual(
    parseMsvcArgs(['/Qnew', '/zzz'], { slashPaths: false }).map((a) => a.kind),
    ['flag', 'flag'],
  );
  assert.deepEqual(parseMsvcArgs(['/srv/a.c'], { slashPaths: true })[0]?.kind, 'source');
  // …but a path that starts like an option is that option, for clang-cl too (`/work/a.c` is `/wo rk/a.c`):
  // hence `--` before absolute sources on Linux.
  assert.deepEqual(shape(['/work/a.c'])[0], ['/wo', 'value', 'rk/a.c']);
  assert.deepEqual(shape(['a.c', '/srv/src/b.cpp', '/Tc', 'c.txt', '/Tpd.inl', '--', '/c']), [
    ['', 'source', 'a.c'],
    ['', 'source', '/srv/src/b.cpp'],
    ['/Tc', 'source', 'c.txt'],
    ['/Tp', 'source', 'd.inl'],
    ['--', 'flag', undefined],
    ['', 'source', '/c'],
  ]);
});

test('clang-cl’s GNU-style extras, /clang:, and /link with everything after it', () => {
  assert.deepEqual(shape(['--target=x86_64-pc-windows-msvc', '-m64', '-fuse-ld=lld', '-Xclang', '-ast-dump']), [
    ['--target=x86_64-pc-windows-msvc', 'flag', undefined],
    ['-m64', 'flag', undefined],
    ['-fuse-ld=lld', 'flag', undefined],
    ['-Xclang', 'value', '-ast-dump'],
  ]);
  assert.deepEqual(shape(['/clang:-fno-rtti', '-mllvm', '-x86-asm-syntax=intel']), [
    ['/clang:', 'value', '-fno-rtti'],
    ['-mllvm', 'value', '-x86-asm-syntax=intel'],
  ]);
  const link = parseMsvcArgs(['a.c', '/link', '/OUT:a.exe', 'user32.lib']);
  assert.equal(link.length, 2);
  assert.deepEqual(link[1], {
    option: '/link',
    kind: 'flag',
    value: '/OUT:a.exe user32.lib',
    raw: ['/link', '/OUT:a.exe', 'user32.lib'],
  });
});

test('Windows command-line splitting: quotes, backslashes before quotes, doubled quotes', () => {
  assert.deepEqual(splitWindowsCommandLine('/c  "a b.c"\t/Fo"out dir\\\\"\r\n/DX=\\"q\\" C:\\dir\\'), [
    '/c',
    'a b.c',
    '/Foout dir\\',
    '/DX="q"',
    'C:\\dir\\',
  ]);
  assert.deepEqual(splitWindowsCommandLine('"a""b" \\\\\\"c'), ['a"b', '\\"c']);
  assert.deepEqual(splitWindowsCommandLine('\'single\' ""'), ["'single'", '']);
});

test('@response files: UTF-8, UTF-16 with its byte-order mark, nested, relative to the cwd', (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'inner.rsp'), '/DINNER "/Iwith space"');
  writeFileSync(join(dir, 'outer.rsp'), '/c @inner.rsp\n/Foa.obj');
  const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('/DWIDE=é a.c', 'utf16le')]);
  writeFileSync(join(dir, 'wide.rsp'), utf16);
  assert.deepEqual(expandMsvcResponseFiles(['@outer.rsp', `@${join(dir, 'wide.rsp')}`], dir), [
    '/c',
    '/DINNER',
    '/Iwith space',
    '/Foa.obj',
    '/DWIDE=é',
    'a.c',
  ]);
  assert.throws(() => expandMsvcResponseFiles(['@missing.rsp'], dir), /ENOENT/);
  writeFileSync(join(dir, 'loop.rsp'), '@loop.rsp');
  assert.throws(() => expandMsvcResponseFiles(['@loop.rsp'], dir), /nesting too deep/);
});

/** Verdicts under cl.exe's rules (an unknown `/x` is an option, never a path). */
const verdict = (args: string[]) => parseMsvcArgs(args, { slashPaths: false }).map((a) => msvcFarmVerdict(a));

test('farm: what CMake’s and Meson’s MSVC rules pass is allowed', () => {
  const cmake = String.raw`/nologo /TP -DFOO_EXPORTS -IC:\src\include -external:IC:\deps\include -external:W0 /DWIN32 /D_WINDOWS /GR /EHsc /O2 /Ob2 /DNDEBUG -std:c++17 -MD /showIncludes /FoCMakeFiles\foo.dir\a.cpp.obj /FdCMakeFiles\foo.dir\ /FS -c C:\src\a.cpp`;
  for (const [i, v] of verdict(cmake.split(' ')).entries()) assert.equal(v, true, cmake.split(' ')[i]);
  const meson =
    '/MD /nologo /showIncludes /utf-8 /W3 /O2 /Gw /Z7 /std:c11 -Ilibz.a.p -I. -I.. /Folibz.a.p/adler32.c.obj /c ../adler32.c';
  for (const [i, v] of verdict(meson.split(' ')).entries()) assert.equal(v, true, meson.split(' ')[i]);
  const clangCl = '--target=x86_64-pc-windows-msvc -m64 -fuse-ld=lld /clang:-fno-rtti /Brepro /Zc:inline -Wno-unused';
  for (const [i, v] of verdict(clangCl.split(' ')).entries()) assert.equal(v, true, clangCl.split(' ')[i]);
});

test('farm: code loaders, internals, unknown options and unmapped paths are refused, with ASCII reasons', () => {
  const refused: [string[], RegExp][] = [
    [['/B1', 'evil.dll'], /replaces a compiler pass/],
    [['/B2evil.dll'], /replaces a compiler pass/],
    [['/Bxevil.exe'], /replaces a compiler pass/],
    [['/analyze:pluginEspXEngine.dll'], /replaces a compiler pass or loads a plugin/],
    [['-Xclang', '-load'], /internals/],
    [['-mllvm', '-x'], /internals/],
    [['/d1reportAllClassLayout'], /internals/],
    [['/d2cgsummary'], /internals/],
    [['/clang:-fplugin=/tmp/x.so'], /plugin/],
    [['/clang:-B/tmp/evil'], /path inside \/clang:/],
    [['/clang:-fdebug-prefix-map=/a=/b'], /path inside \/clang:/],
    [['/experimental:module'], /experimental/],
    [['/external:env:EVIL'], /environment variable/],
    [['/Fadir/'], /does not map/],
    [['/Fpx.pch'], /does not map/],
    [['/sourceDependencies', 'deps.json'], /does not map/],
    [['/winsysroot', '/opt/winsdk'], /does not check/],
    [['/AI', 'assemblies'], /does not check/],
    [['/std:c++99ish'], /value this policy does not know/],
    [['/EHsc;rm'], /value this policy does not know/],
    [['-fuse-ld=/tmp/evil-ld'], /loads code|any program/],
    [['-fprofile-instr-use=/data/p.profdata'], /loads code or reads or writes files/],
    [['/Qnew-unknown-thing'], /known-safe/],
    [['/Gm'], /known-safe/],
    [['-fsomething=$(rm)'], /known-safe/],
  ];
  for (const [args, reason] of refused) {
    const v = verdict(args).find((x) => x !== true);
    assert.equal(typeof v, 'string', `${args.join(' ')} must be refused`);
    assert.match(v as string, reason, args.join(' '));
    assert.match(v as string, /^[\x20-\x7e]+$/, 'one line of ASCII text');
  }
});
