// The MSVC compile model: what the cache may keep (one source, /c, one object), the object's path by cl's
// rules, the key's arguments (never the output paths), and the header list /showIncludes gives.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { classifyMsvc, type MsvcCompile, msvcFlavor } from '../../src/compiler/msvc.ts';
import { showIncludesPrefixFrom, splitShowIncludes } from '../../src/compiler/msvc-show-includes.ts';
import { tempDir } from '../helpers.ts';

const CL = 'C:\\VS\\VC\\Tools\\MSVC\\14.38\\bin\\Hostx64\\x64\\cl.exe';
const CLANG_CL = '/usr/bin/clang-cl-14';

const ok = (compiler: string, args: string[], cwd = '/w', env: NodeJS.ProcessEnv = {}): MsvcCompile => {
  const c = classifyMsvc(compiler, args, cwd, env);
  assert.equal(c.kind, 'cacheable', JSON.stringify(c));
  return (c as Extract<typeof c, { kind: 'cacheable' }>).compile;
};
const why = (compiler: string, args: string[]) => {
  const c = classifyMsvc(compiler, args, '/w');
  assert.equal(c.kind, 'uncacheable', JSON.stringify(c));
  return (c as Extract<typeof c, { kind: 'uncacheable' }>).reason;
};

test('which driver: cl, cl.exe, clang-cl(-N), clang --driver-mode=cl; gcc-style names are not MSVC', () => {
  assert.equal(msvcFlavor(CL), 'cl');
  assert.equal(msvcFlavor('CL.EXE'), 'cl');
  assert.equal(msvcFlavor('clang-cl'), 'clang-cl');
  assert.equal(msvcFlavor(CLANG_CL), 'clang-cl');
  assert.equal(msvcFlavor('/usr/bin/clang-14', ['--driver-mode=cl', '/c']), 'clang-cl');
  assert.equal(msvcFlavor('/usr/bin/clang-14', ['-c']), undefined);
  assert.equal(msvcFlavor('gcc'), undefined);
  assert.equal(msvcFlavor('/opt/bin/clang'), undefined);
});

test('CMake’s Ninja rule for MSVC (Release): cacheable, object as named, key without output paths', () => {
  const args =
    String.raw`/nologo /TP -DFOO_EXPORTS -IC:\src\include -external:IC:\deps\include -external:W0 /DWIN32 /D_WINDOWS /GR /EHsc /O2 /Ob2 /DNDEBUG -std:c++17 -MD /showIncludes /FoCMakeFiles\foo.dir\src\a.cpp.obj /FdCMakeFiles\foo.dir\ /FS -c C:\src\a.cpp`.split(
      ' ',
    );
  const c = ok(CL, args, 'C:\\build');
  assert.equal(c.driver, 'msvc');
  assert.equal(c.flavor, 'cl');
  assert.equal(c.source, 'C:\\src\\a.cpp');
  assert.equal(c.language, 'c++');
  assert.equal(c.output, 'CMakeFiles\\foo.dir\\src\\a.cpp.obj');
  assert.equal(c.showIncludes, true);
  assert.equal(c.debug, false);
  assert.deepEqual(c.includeDirs, ['C:\\src\\include', 'C:\\deps\\include']);
  assert.deepEqual(c.keyEnv, ['INCLUDE', 'EXTERNAL_INCLUDE']);
  const key = c.keyArgs.join(' ');
  assert.ok(!key.includes('a.cpp.obj') && !key.includes('/Fd'), key);
  // `-MD` and `/MD`, `-std:` and `/std:` are one option each: the key holds the canonical spelling.
  assert.match(key, /\/MD .*\/showIncludes/);
  assert.match(key, /\/std: c\+\+17/);
  // cl.exe prints absolute header paths under /showIncludes, and those lines are replayed: the cwd decides them.
  assert.match(key, /\$CWD C:\\build$/);
  // The same compile into another object: the same key arguments.
  const moved = args.map((a) => (a.startsWith('/Fo') ? '/Foother\\x.obj' : a));
  assert.deepEqual(ok(CL, moved, 'C:\\build').keyArgs, c.keyArgs);
});

test('Meson’s MSVC rule: /Zi is cl.exe’s shared PDB (uncacheable), /Z7 embeds it (cacheable, debug)', () => {
  const meson =
    '/MD /nologo /showIncludes /utf-8 /W2 /Od /Zi /FS /Fdlibz.a.p/adler32.c.pdb /Folibz.a.p/adler32.c.obj /c ../adler32.c';
  assert.equal(why(CL, meson.split(' ')), 'debug information in a shared PDB (/Zi; use /Z7)');
  const z7 = ok(CL, meson.replace('/Zi', '/Z7').split(' '));
  assert.equal(z7.debug, true);
  assert.equal(z7.output, 'libz.a.p/adler32.c.obj');
  // CodeView's build record names the object's absolute path: with debug information it is part of the key.
  assert.deepEqual(z7.keyArgs.slice(-4, -2), ['$OUTPUT', '/w/libz.a.p/adler32.c.obj']);
  // clang-cl's /Zi is /Z7: debug information in the object, no PDB.
  const clang = ok(CLANG_CL, meson.split(' '));
  assert.equal(clang.debug, true);
});

test('the object’s path: /Fo file, /Fo directory, no extension, /o, the default in the cwd', () => {
  assert.equal(ok(CLANG_CL, ['/c', 'src/a.c']).output, 'a.obj');
  assert.equal(ok(CLANG_CL, ['/c', '/Foout/', 'src/a.c']).output, 'out/a.obj');
  assert.equal(ok(CLANG_CL, ['/c', '/Foout/b', 'src/a.c']).output, 'out/b.obj');
  assert.equal(ok(CLANG_CL, ['/c', '/Foout/b.o', 'src/a.c']).output, 'out/b.o');
  assert.equal(ok(CLANG_CL, ['/c', 'src/a.c', '/o', 'via-o.obj']).output, 'via-o.obj');
  // cl.exe takes `\` as a separator too; clang-cl on Linux does not.
  assert.equal(ok(CL, ['/c', '/Foout\\', 'src\\a.c']).output, 'out\\a.obj');
  assert.equal(ok(CL, ['/c', '/Fo:', 'named', 'a.c']).output, 'named.obj');
  assert.match(why(CLANG_CL, ['/c', '/Fo:', 'named', 'a.c']), /colon as part of the file name/);
});

test('languages: extension, /Tc and /Tp for one file, /TC and /TP for all', () => {
  assert.equal(ok(CLANG_CL, ['/c', 'a.c']).language, 'c');
  assert.equal(ok(CLANG_CL, ['/c', 'a.cxx']).language, 'c++');
  assert.equal(ok(CLANG_CL, ['/c', '/Tp', 'a.c']).language, 'c++');
  assert.equal(ok(CLANG_CL, ['/c', '/Tcweird.inl']).language, 'c');
  assert.equal(ok(CLANG_CL, ['/c', '/TP', 'a.c']).language, 'c++');
  assert.equal(ok(CLANG_CL, ['/c', '/TC', 'a.cpp']).language, 'c');
  assert.equal(why(CLANG_CL, ['/c', 'a.txt']), 'unknown language of a.txt');
});

test('uncacheable MSVC calls are named', () => {
  const cases: [string[], string][] = [
    [['a.c'], 'linking'],
    [['/c'], 'no input file'],
    [['/c', 'a.c', 'b.c'], 'several input files'],
    [['/c', '-'], 'source on stdin'],
    [['/E', 'a.c'], 'preprocessing only (/E, /EP, /P)'],
    [['/P', '/c', 'a.c'], 'preprocessing only (/E, /EP, /P)'],
    [['/c', '/Zs', 'a.c'], 'syntax check only (/Zs)'],
    [['/c', '/FAs', 'a.c'], 'assembly listing (/FA, /Fa)'],
    [['/c', '/Yupch.h', '/Fppch.pch', 'a.c'], 'precompiled headers (/Yc, /Yu, /Fp)'],
    [['/c', '/FRbrowse/', 'a.c'], 'browse information (/FR, /Fr)'],
    [['/c', '/analyze', 'a.c'], 'code analysis (/analyze)'],
    [['/c', '/Gm', 'a.c'], 'minimal rebuild (/Gm)'],
    [['/c', '/sourceDependencies', 'd.json', 'a.c'], 'writes its own dependency file (/sourceDependencies)'],
    [['/c', '/showIncludes:user', 'a.c'], '/showIncludes:user (the cache must learn every header, system ones too)'],
    [['/c', 'a.c', '/link', '/OUT:x.exe'], 'linking (/link)'],
    [['/c', '/clang:-E', 'a.c'], 'a /clang: option that changes what the compile writes'],
    [['/c', '-fprofile-instr-generate', 'a.c'], 'profiling (-fprofile-*)'],
    [['/c', '/I', 'a.c'], 'no input file'],
    [['/c', '/Fo', 'a.c'], '/Fo without a value'],
  ];
  for (const [args, reason] of cases) assert.equal(why(CLANG_CL, args), reason, args.join(' '));
});

test('key arguments: defines and include dirs decide it; /showIncludes too (it changes the replayed output)', () => {
  const base = ok(CLANG_CL, ['/c', '/DX=1', '/Iinc', 'a.c']).keyArgs;
  assert.notDeepEqual(ok(CLANG_CL, ['/c', '/DX=2', '/Iinc', 'a.c']).keyArgs, base);
  assert.notDeepEqual(ok(CLANG_CL, ['/c', '/DX=1', '/Iother', 'a.c']).keyArgs, base);
  assert.notDeepEqual(ok(CLANG_CL, ['/c', '/DX=1', '/Iinc', '/showIncludes', 'a.c']).keyArgs, base);
  // Spelling is not meaning: `-D X=1`, `/D X=1`, `/DX=1` are one key.
  assert.deepEqual(ok(CLANG_CL, ['-c', '-D', 'X=1', '-I', 'inc', 'a.c']).keyArgs, base);
  // clang-cl prints the paths as it found them, relative to what the arguments say: no cwd in its key.
  assert.ok(!ok(CLANG_CL, ['/c', '/showIncludes', 'a.c']).keyArgs.includes('$CWD'));
});

test('CL and _CL_ go before and after the command line; INCLUDE dirs search after /I unless /X', () => {
  const c = ok(CLANG_CL, ['/c', 'a.c'], '/w', {
    CL: '/DFROM_CL "/Iwith space"',
    _CL_: '/DAFTER',
    INCLUDE: '/sdk/a;/sdk/b',
  });
  assert.deepEqual(c.args, ['/DFROM_CL', '/Iwith space', '/c', 'a.c', '/DAFTER']);
  assert.deepEqual(c.includeDirs, ['with space', '/sdk/a', '/sdk/b']);
  const x = ok(CLANG_CL, ['/c', '/X', 'a.c'], '/w', { INCLUDE: '/sdk/a' });
  assert.deepEqual(x.includeDirs, []);
  assert.deepEqual(x.keyEnv, []);
  assert.deepEqual(ok(CLANG_CL, ['/c', '/external:env:DEPS', 'a.c']).keyEnv, ['INCLUDE', 'EXTERNAL_INCLUDE', 'DEPS']);
});

test('@response files are expanded (Windows quoting); an unreadable one is uncacheable', (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'args.rsp'), '/c "/DMSG=\\"hi there\\"" /Foo.obj a.c');
  const c = ok(CLANG_CL, ['@args.rsp'], dir);
  assert.equal(c.output, 'o.obj');
  assert.ok(c.keyArgs.includes('MSG="hi there"'));
  assert.equal(classifyMsvc(CLANG_CL, ['@nope.rsp'], dir).kind, 'uncacheable');
});

test('debug maps: -fdebug-compilation-dir names the cwd anew; /clang: prefix maps with the cwd as $CWD', () => {
  const c = ok(CLANG_CL, ['/c', '/Z7', '-fdebug-compilation-dir=.', '/clang:-ffile-prefix-map=/w/src=/src', 'a.c']);
  assert.deepEqual(c.debugMaps, [
    ['/w', '.'],
    ['/w/src', '/src'],
  ]);
  assert.deepEqual(c.macroMaps, [['/w/src', '/src']]);
  assert.ok(c.keyArgs.includes('-ffile-prefix-map=$CWD/src=/src'), c.keyArgs.join(' '));
});

test('a prefix map given directly is no map (clang-cl 14 ignores it): it stays an argument of the key', () => {
  const c = ok(CLANG_CL, ['/c', '/Z7', '-fdebug-prefix-map=/w=/src', 'a.c']);
  assert.deepEqual(c.debugMaps, []);
  assert.ok(c.keyArgs.includes('-fdebug-prefix-map=/w=/src'), c.keyArgs.join(' '));
});

test('/showIncludes output: nesting, first mention once, other lines kept byte for byte', () => {
  const out = Buffer.from(
    'a.c\r\nNote: including file: C:\\p\\inc\\a.h\r\nNote: including file:  C:\\p\\inc\\b.h\r\n' +
      'a.c(3): warning C4101: unused\r\nNote: including file: C:\\p\\inc\\b.h\r\nNote: including file:   \r\n',
  );
  const { headers, rest } = splitShowIncludes(out);
  assert.deepEqual(headers, ['C:\\p\\inc\\a.h', 'C:\\p\\inc\\b.h']);
  assert.equal(rest.toString(), 'a.c\r\na.c(3): warning C4101: unused\r\n');
  // A localized cl.exe: the prefix learnt by probing, then the same split.
  const german = 'Hinweis: Einlesen der Datei: C:\\t\\accel-probe.h\r\n';
  const prefix = showIncludesPrefixFrom(german, 'accel-probe.h');
  assert.equal(prefix, 'Hinweis: Einlesen der Datei:');
  assert.deepEqual(splitShowIncludes(`${german}x\n`, prefix).headers, ['C:\\t\\accel-probe.h']);
  assert.equal(
    showIncludesPrefixFrom('Note: including file: ./accel-probe.h\n', 'accel-probe.h'),
    'Note: including file:',
  );
  assert.equal(showIncludesPrefixFrom('nothing here\n', 'accel-probe.h'), undefined);
});
