// The include scanner behind `accel cc` over REAPI: for real compiles it names every file the preprocessor reads
// (a superset of `gcc -M`), and it gives up (the caller then asks the compiler) where it cannot be sure.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseDepFile } from '../../src/compiler/depfile.ts';
import { scanIncludes } from '../../src/farm/reapi/include-scan.ts';
import { okStderr, runCommand, tempDir, testNeeding } from '../helpers.ts';
import { copyProject } from './farm-harness.ts';

const test = testNeeding('gcc', 'g++', 'make');

/** What the compiler itself says the compile reads (`-M`), as absolute paths. */
async function compilerDeps(compiler: string, args: string[], cwd: string): Promise<string[]> {
  const r = await runCommand(compiler, [...args, '-M'], { cwd });
  okStderr(r);
  return parseDepFile(r.stdout.toString()).deps.map((d) => resolve(cwd, d));
}

function scan(compiler: string, args: string[], cwd: string, source: string, language: string) {
  return scanIncludes({ compilerPath: `/usr/bin/${compiler}`, args, cwd, source, language, env: process.env });
}

test('every compile of the example project: the scan holds every file gcc -M names', async (t) => {
  const src = copyProject(tempDir(t));
  okStderr(await runCommand('make', ['-C', src, '-j4', 'BUILD=build', 'objs']));
  // The compile lines make runs, as make prints them.
  const lines = (await runCommand('make', ['-C', src, '-n', '-B', 'BUILD=build', 'objs'])).stdout
    .toString()
    .split('\n')
    .filter((l) => /^(gcc|g\+\+) .* -c /.test(l));
  assert.equal(lines.length, 22);
  for (const line of lines) {
    const [compiler, ...args] = line.split(/\s+/).filter(Boolean) as [string, ...string[]];
    const sourceIndex = args.indexOf('-c') + 1;
    const source = args[sourceIndex] as string;
    const kept = args.filter((a, i) => !['-MMD', '-MP', '-c'].includes(a) && args[i - 1] !== '-o' && a !== '-o');
    const found = scan(compiler, kept, src, source, compiler === 'g++' ? 'c++' : 'c');
    assert.ok(found, `${line}: the scan gave up`);
    const scanned = new Set(found);
    for (const dep of await compilerDeps(compiler, kept, src)) assert.ok(scanned.has(dep), `${line}: misses ${dep}`);
  }
});

test('include_next, a project header a system header picks up through -I, forced includes, __has_include and split directives are found; computed includes give up', async (t) => {
  const dir = tempDir(t);
  const shadow = join(dir, 'shadow', 'bits');
  mkdirSync(shadow, { recursive: true });
  // <stdio.h> (in /usr) includes <bits/libc-header-start.h>: with -Ishadow gcc takes the project's.
  writeFileSync(join(shadow, 'libc-header-start.h'), '#include_next <bits/libc-header-start.h>\n');
  mkdirSync(join(dir, 'inc'));
  writeFileSync(join(dir, 'inc', 'forced.h'), '#define FORCED 1\n');
  writeFileSync(join(dir, 'inc', 'maybe.h'), '#define MAYBE 1\n');
  writeFileSync(join(dir, 'inc', 'split.h'), '#define SPLIT 1\n');
  writeFileSync(
    join(dir, 'a.c'),
    [
      '#include <stdio.h>',
      '#if __has_include("maybe.h")',
      '#  include "maybe.h"',
      '#endif',
      '#include \\',
      '  "split.h"',
      'int main(void) { printf("%d\\n", FORCED + MAYBE + SPLIT); return 0; }',
      '',
    ].join('\n'),
  );
  const args = ['-I', 'shadow', '-Iinc', '-include', 'forced.h', '-O2'];
  const found = new Set(scan('gcc', [...args, 'a.c'], dir, 'a.c', 'c'));
  for (const dep of await compilerDeps('gcc', [...args, 'a.c'], dir)) assert.ok(found.has(dep), `misses ${dep}`);
  assert.ok(found.has(join(dir, 'shadow', 'bits', 'libc-header-start.h')));

  // A header made between two compiles (a generated one) is seen by the next scan: the per-directory listings
  // are kept only while the directory's mtime stays the same.
  writeFileSync(join(dir, 'late.c'), '#include "late.h"\nint z;\n');
  assert.ok(!scan('gcc', ['-Iinc', 'late.c'], dir, 'late.c', 'c')?.includes(join(dir, 'inc', 'late.h')));
  writeFileSync(join(dir, 'inc', 'late.h'), '#define LATE 1\n');
  assert.ok(scan('gcc', ['-Iinc', 'late.c'], dir, 'late.c', 'c')?.includes(join(dir, 'inc', 'late.h')));

  writeFileSync(join(dir, 'computed.c'), '#define H "inc/maybe.h"\n#include H\nint x = MAYBE;\n');
  assert.equal(scan('gcc', ['computed.c'], dir, 'computed.c', 'c'), undefined);
  // lua.h's `#if defined(LUA_USER_H) #include LUA_USER_H`: a macro nobody defines is a branch not taken…
  writeFileSync(join(dir, 'user.c'), '#if defined(USER_H)\n#include USER_H\n#endif\nint y;\n');
  assert.deepEqual(scan('gcc', ['user.c'], dir, 'user.c', 'c'), [join(dir, 'user.c')]);
  // …but defined on the command line it is taken, and only the preprocessor knows the file.
  assert.equal(scan('gcc', ['-DUSER_H="inc/maybe.h"', 'user.c'], dir, 'user.c', 'c'), undefined);
  assert.equal(scan('gcc', ['-include', 'inc/forced.h', '-D', 'USER_H', 'user.c'], dir, 'user.c', 'c'), undefined);
  // Options that move the search path out of this model: the compiler is asked instead.
  assert.equal(scan('gcc', ['--sysroot=/x', 'a.c'], dir, 'a.c', 'c'), undefined);
  assert.equal(scan('gcc', ['-nostdinc', 'a.c'], dir, 'a.c', 'c'), undefined);
  assert.equal(scan('gcc', ['-Wp,-Iinc', 'a.c'], dir, 'a.c', 'c'), undefined);
  assert.equal(scan('gcc', ['a.S'], dir, 'a.S', 'assembler-with-cpp'), undefined);
  // Trigraphs in an ISO mode: `??=include` is a directive then.
  writeFileSync(join(dir, 'tri.c'), '??=include "inc/maybe.h"\nint x = MAYBE;\n');
  assert.equal(scan('gcc', ['-std=c99', 'tri.c'], dir, 'tri.c', 'c'), undefined);
});
