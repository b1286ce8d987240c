import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Refusal } from '../../src/farm/policy.ts';
import { compilerCall, shellWords } from '../../src/farm/reapi/command.ts';

const ALLOWED = ['gcc', 'g++', 'cc', 'c++', 'clang', 'clang++'];
const SETUP = 'source external/bazel_tools/tools/genrule/genrule-setup.sh; ';

test('a Bazel genrule command that is one compiler call runs as that call, without a shell', () => {
  assert.deepEqual(
    compilerCall(['/bin/bash', '-c', `${SETUP}gcc -O2 -c a.c -o bazel-out/k8-fastbuild/bin/a.o`], ALLOWED),
    {
      compiler: 'gcc',
      args: ['-O2', '-c', 'a.c', '-o', 'bazel-out/k8-fastbuild/bin/a.o'],
      tool: 'compiler',
    },
  );
  assert.deepEqual(compilerCall(['bash', '-c', `gcc -DMSG='"hi there"' -c "a b.c"`], ALLOWED), {
    compiler: 'gcc',
    args: ['-DMSG="hi there"', '-c', 'a b.c'],
    tool: 'compiler',
  });
  // Direct argv (accel cc, recc) and the system's compilers by absolute path.
  assert.deepEqual(compilerCall(['/usr/bin/g++', '-c', 'x.cc'], ALLOWED), {
    compiler: 'g++',
    args: ['-c', 'x.cc'],
    tool: 'compiler',
  });
  // Bazel's archiver and strip, by absolute path or name: binutils the worker runs from its own PATH.
  assert.deepEqual(compilerCall(['/usr/bin/ar', 'rcsD', 'out.a', '@out.a-2.params'], ALLOWED), {
    compiler: 'ar',
    args: ['rcsD', 'out.a', '@out.a-2.params'],
    tool: 'ar',
  });
  assert.equal(compilerCall(['strip', '-S', '-o', 'x.stripped', 'x'], ALLOWED).tool, 'strip');
  assert.deepEqual(compilerCall(['aarch64-linux-gnu-gcc', '-c', 'x.c'], ALLOWED).compiler, 'aarch64-linux-gnu-gcc');
});

test('anything but one plain compiler call is refused, naming what', () => {
  const refused = (argv: string[], pattern: RegExp) =>
    assert.throws(
      () => compilerCall(argv, ALLOWED),
      (e: unknown) => e instanceof Refusal && pattern.test(e.message) && /^ACCEL_(REAPI|FARM)_/.test(e.code),
      argv.join(' '),
    );
  refused(['bash', '-c', `${SETUP}touch /tmp/x; gcc -c a.c`], /';' at column/);
  refused(['bash', '-c', 'gcc -c a.c && id'], /'&'/);
  refused(['bash', '-c', 'gcc -c a.c | tee x'], /'\|'/);
  refused(['bash', '-c', 'gcc -c a.c > out'], /'>'/);
  refused(['bash', '-c', 'gcc -c $(id).c'], /'\$'/);
  refused(['bash', '-c', 'gcc -c `id`.c'], /'`'/);
  refused(['bash', '-c', 'gcc -c "$HOME/a.c"'], /expansion inside double quotes/);
  refused(['bash', '-c', 'gcc -c *.c'], /'\*'/);
  refused(['bash', '-c', "gcc -c 'a.c"], /unclosed/);
  refused(['bash', '-c', 'gcc -c a.c\nid'], /column/);
  refused(['sh', '-c', 'python3 -c 1'], /not on the farm's allowlist/);
  refused(['./gcc', '-c', 'a.c'], /not a compiler or binutil from the system's bin/);
  refused(['/tmp/evil/gcc', '-c', 'a.c'], /not a compiler or binutil from the system's bin/);
  refused(['/usr/bin/python3', '-c', '1'], /not on the farm's allowlist/);
  refused(['bash', '-c', ''], /no command/);
  refused([], /no command/);
});

test('shellWords keeps quoted text literally and joins adjacent pieces into one word', () => {
  assert.deepEqual(shellWords(`a 'b c'd "e'f" ''`), ['a', 'b cd', "e'f", '']);
  assert.deepEqual(shellWords('  a\tb  '), ['a', 'b']);
});
