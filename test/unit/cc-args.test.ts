import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { mapPrefix } from '../../src/cc/key.ts';
import { shadowCandidates } from '../../src/cc/manifest.ts';
import { classify } from '../../src/compiler/args.ts';
import { parseDepFile, retargetDepFile } from '../../src/compiler/depfile.ts';
import { tempDir } from '../helpers.ts';

const ok = (args: string[], cwd = '/w') => {
  const c = classify('gcc', args, cwd);
  assert.equal(c.kind, 'cacheable', JSON.stringify(c));
  return (c as Extract<typeof c, { kind: 'cacheable' }>).compile;
};
const why = (args: string[]) => {
  const c = classify('gcc', args, '/w');
  assert.equal(c.kind, 'uncacheable');
  return (c as Extract<typeof c, { kind: 'uncacheable' }>).reason;
};

test('a compile: source, language, output (given or default), dependency file and target', () => {
  const a = ok(['-O2', '-Iinclude', '-I', 'inc2', '-DX=1', '-c', 'src/a.c', '-o', 'build/a.o', '-MMD', '-MP']);
  assert.equal(a.source, 'src/a.c');
  assert.equal(a.language, 'c');
  assert.equal(a.output, 'build/a.o');
  assert.deepEqual(a.deps, { file: 'build/a.d', target: 'build/a.o', system: false });
  assert.deepEqual(a.includeDirs, ['include', 'inc2']);
  // GCC searches -iquote, -I, -isystem, -idirafter in that order, however the command line orders them (conda's
  // CFLAGS put -isystem $PREFIX/include first).
  const order = ok(['-idirafter', 'after', '-isystem', '/prefix/include', '-I../include', '-iquote', 'q', '-c', 'x.c']);
  assert.deepEqual(order.includeDirs, ['q', '../include', '/prefix/include', 'after']);
  assert.deepEqual(shadowCandidates('../include/curses.h', 'x.c', order.includeDirs), ['curses.h', 'q/curses.h']);
  assert.ok(!a.keyArgs.includes('build/a.o'), 'the output path is not in the key');
  assert.ok(a.keyArgs.includes('-DX=1') || a.keyArgs.join(' ').includes('-D X=1'));
  const b = ok(['-c', 'x.cpp', '-MD', '-MF', 'deps/x.dep', '-MT', 'custom']);
  assert.equal(b.language, 'c++');
  assert.equal(b.output, 'x.o');
  assert.deepEqual(b.deps, { file: 'deps/x.dep', target: 'custom', system: true });
  assert.equal(ok(['-S', 'x.c']).output, 'x.s');
  assert.equal(ok(['-x', 'c', '-c', 'weird.txt']).language, 'c');
  const g = ok(['-g', '-fdebug-prefix-map=/w=.', '-fmacro-prefix-map=/m=M', '-ffile-prefix-map=/f=F', '-c', 'x.c']);
  assert.equal(g.debug, true);
  // -fdebug-prefix-map rewrites debug info only, -fmacro-prefix-map __FILE__ only, -ffile-prefix-map both.
  assert.deepEqual(g.debugMaps, [
    ['/w', '.'],
    ['/f', 'F'],
  ]);
  assert.deepEqual(g.macroMaps, [
    ['/m', 'M'],
    ['/f', 'F'],
  ]);
  // A map of the cwd is "the cwd" in the key, so two build directories share results.
  assert.ok(g.keyArgs.includes('-fdebug-prefix-map=$CWD=.'), JSON.stringify(g.keyArgs));
});

test('uncacheable calls are named', () => {
  assert.equal(why(['x.o', 'y.o', '-o', 'prog']), 'linking');
  assert.equal(why(['-E', 'x.c']), 'preprocessing only (-E)');
  assert.equal(why(['-c', 'x.c', 'y.c']), 'several input files');
  assert.equal(why(['-c', 'x.c', '-o', '-']), 'output to stdout (-o -)');
  assert.equal(why(['-c', '-x', 'c', '-']), 'source on stdin');
  assert.equal(why(['-save-temps', '-c', 'x.c']), '-save-temps');
  assert.equal(why(['-fprofile-generate', '-c', 'x.c']), 'profiling (-fprofile-*)');
  assert.equal(why(['-M', 'x.c']), 'dependencies only (-M/-MM)');
  assert.equal(why(['-c', 'x.unknown']), 'unknown language of x.unknown');
  assert.equal(why(['-c']), 'no input file');
});

test('@file arguments are expanded, quotes and backslashes included', (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'args'), '-c "src/my file.c" -o out.o -DMSG=\\"hi\\"');
  const c = ok([`@${join(dir, 'args')}`], dir);
  assert.equal(c.source, 'src/my file.c');
  assert.equal(c.output, 'out.o');
  assert.equal(why([`@${join(dir, 'missing')}`]), 'unreadable @file');
});

test('dependency files: parsed, escaped spaces, continuation lines, -MP phony rules; retargeted', () => {
  const text =
    'build/a.o: src/a.c include/common.h \\\n include/my\\ header.h /usr/include/stdio.h\ninclude/common.h:\n';
  assert.deepEqual(parseDepFile(text), {
    targets: ['build/a.o'],
    deps: ['src/a.c', 'include/common.h', 'include/my header.h', '/usr/include/stdio.h'],
  });
  assert.equal(
    retargetDepFile(text, 'build/a.o', 'other/a.o').split('\n')[0],
    'other/a.o: src/a.c include/common.h \\',
  );
});

test('shadow candidates: the source dir and earlier include dirs', () => {
  assert.deepEqual(shadowCandidates('inc2/b.h', 'src/y.c', ['inc1', 'inc2']), ['src/b.h', 'inc1/b.h']);
  assert.deepEqual(shadowCandidates('src/local.h', 'src/y.c', ['inc1']), []);
  assert.deepEqual(shadowCandidates('/usr/include/stdio.h', 'y.c', ['inc1']), []);
});

test('prefix maps rewrite a path the way gcc and clang do: a plain string prefix, the last map that matches', () => {
  assert.equal(mapPrefix('/home/u/proj', [['/home/u', '/src']]), '/src/proj');
  // Not at a directory boundary, and still mapped: gcc 12 and clang 14 both write /src2/proj here.
  assert.equal(mapPrefix('/home/u2/proj', [['/home/u', '/src']]), '/src2/proj');
  assert.equal(mapPrefix('/other/proj', [['/home/u', '/src']]), '/other/proj');
  assert.equal(
    mapPrefix('/a/b', [
      ['/a', '/x'],
      ['/a/b', '.'],
    ]),
    '.',
  );
});

test('one depfile parser for the cache and the farm: escaped spaces, $$, \\#, continuations, -MP rules', () => {
  const text =
    'build/a\\ b.o: src/a\\ b.c include/x\\#1.h \\\n  include/cost$$.h\\\n include/last.h\n\ninclude/x\\#1.h:\n';
  assert.deepEqual(parseDepFile(text), {
    targets: ['build/a b.o'],
    deps: ['src/a b.c', 'include/x#1.h', 'include/cost$.h', 'include/last.h'],
  });
});
