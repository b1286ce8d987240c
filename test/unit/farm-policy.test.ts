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

test('checkCompiler: only bare names on the allowlist, and GNU cross compilers of them', () => {
  checkCompiler('gcc', ['gcc', 'g++']);
  checkCompiler('aarch64-linux-gnu-gcc', ['gcc', 'g++']);
  checkCompiler('powerpc64le-linux-gnu-g++', ['gcc', 'g++']);
  refused(() => checkCompiler('aarch64-linux-gnu-python3', ['gcc']), 'ACCEL_FARM_COMPILER_REFUSED', /python3/);
  refused(() => checkCompiler('x-gcc', ['gcc']), 'ACCEL_FARM_COMPILER_REFUSED', /x-gcc/);
  refused(() => checkCompiler('../../bin/aarch64-linux-gnu-gcc', ['gcc']), 'ACCEL_FARM_COMPILER_REFUSED', /allowlist/);
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

test('the allowlist refuses every spelling of code loading, sub-tool passing and stray files', () => {
  // gcc accepts these long forms (and turns any other --X into -fX, and abbreviates long options): each one
  // reached code execution or a file outside the job under the old denylist, or would.
  const attacks: string[][] = [
    ['--plugin=./include/evil.h'],
    ['--plugin', './include/evil.h'],
    ['--plugin-arg-evil-x=y'],
    ['--prefix=/tmp/evil'],
    ['--prefix', '/tmp'],
    ['--specs=/tmp/x.specs'],
    ['-specs', '/tmp/x.specs'],
    ['-specs=/usr/lib/rpm/redhat/redhat-hardened-cc1'],
    ['--include=/etc/shadow'],
    ['--include', '/etc/shadow'],
    ['--incl=/etc/passwd'],
    ['--include-directory=/etc'],
    ['--include-directory', '/etc'],
    ['--for-assembler=-o/tmp/x'],
    ['--for-linker=-plugin'],
    ['--imacros=/etc/shadow'],
    ['--output=/tmp/x.o'],
    ['--dump-tree-all'],
    ['--config=/tmp/evil.cfg'],
    ['--config', '/tmp/evil.cfg'],
    ['--gcc-toolchain=/tmp/tc'],
    ['-Xclang', '-load'],
    ['-mllvm', '-x'],
    ['-fplugin-arg-x-y=z'],
    ['-fplugin=./evil.so'],
    ['-Wa,-o,/tmp/x'],
    ['-Wa,@/tmp/args'],
    ['-Wa,--noexecstack,-adhln=/tmp/l'],
    ['-Wp,-MD,/tmp/x'],
    ['-Wp,-include,/etc/shadow'],
    ['-Wp,-DX,-include,/etc/shadow'],
    ['-Xassembler', '-o', '-Xassembler', '/tmp/x'],
    ['-Xpreprocessor', '-include', '-Xpreprocessor', '/etc/shadow'],
    ['-dumpdir', '/tmp/'],
    ['-B/tmp'],
    ['-B', '/tmp'],
    ['@/tmp/args'],
    ['-wrapper', 'gdb,--args'],
    ['-fstack-usage'],
    ['-gsplit-dwarf'],
    ['-march=native'],
    ['-save-temps'],
    ['-fsanitize-ignorelist=/etc/shadow'],
    ['-fdiagnostics-format=sarif-file'],
    ['-iplugindir=/tmp'],
    ['-iprefix', '/tmp/'],
    ['-aux-info', '/tmp/x'],
    ['-some-future-option'],
  ];
  for (const attack of attacks) {
    assert.throws(
      () => map([...attack, '-c', 'a.c']),
      (err: unknown) => err instanceof Refusal && /ACCEL_FARM_(ARG_REFUSED|OUTSIDE_TREE)/.test(err.code),
      attack.join(' '),
    );
  }
});

test('the allowlist passes what real builds use: Debian, Fedora and conda-forge flags', () => {
  const flags = [
    '-Wa,--noexecstack',
    '-Wp,-D_FORTIFY_SOURCE=2',
    '-Wp,-D_GLIBCXX_ASSERTIONS',
    '-Wp,-U_FORTIFY_SOURCE',
    '-Xpreprocessor',
    '-D_REENTRANT',
    '-MMD',
    '-MP',
    '-MF',
    'build/a.d',
    '-MT',
    'build/a.o',
    '-fstack-protector-strong',
    '-fstack-clash-protection',
    '-fcf-protection',
    '-grecord-gcc-switches',
    '-flto=auto',
    '-ffat-lto-objects',
    '-fPIC',
    '-fvisibility=hidden',
    '-ffunction-sections',
    '-fdata-sections',
    '-march=armv8-a+crc',
    '-mtune=generic',
    '-O2',
    '-g',
    '-ggdb3',
    '-std=c11',
    '-std=gnu++17',
    '-pipe',
    '-pthread',
    '-D_GNU_SOURCE',
    '-DVERSION="1.0"',
    '-UNDEBUG',
    '-isystem',
    '/usr/include/x',
    '-I',
    'include',
    '-include',
    'include/config.h',
    '-fdebug-prefix-map=/src/proj=/usr/src/debug',
    '-ffile-prefix-map=/src/proj=.',
    '-fdiagnostics-color=always',
    '-Wall',
    '-Wextra',
    '-Werror=format-security',
    '-Wformat=2',
    '-Wno-unused-parameter',
    '--param=ssp-buffer-size=4',
    '--param',
    'max-inline-insns-single=100',
    '-x',
    'c',
    '-w',
    '-fexceptions',
    '-fasynchronous-unwind-tables',
    '-fno-omit-frame-pointer',
    '-mno-omit-leaf-frame-pointer',
  ];
  const m = map([...flags, '-c', 'src/a.c', '-o', 'build/a.o']);
  assert.deepEqual(m.outputs, ['/src/proj/build/a.d', '/src/proj/build/a.o']);
  assert.ok(m.args.includes('-Wa,--noexecstack') && m.args.includes('-Wp,-D_FORTIFY_SOURCE=2'));
});

// Bazel 4's auto-configured Linux toolchain, as `bazel build --subcommands` printed it for a cc_library (Debian's
// Bazel 4.2, gcc 12): the flags come from unix_cc_configure.bzl (compile_flags, opt_compile_flags, cxx_flags,
// unfiltered_compile_flags) and unix_cc_toolchain_config.bzl (dependency_file, random_seed, pic, include_paths).
const BAZEL4_COMPILE_FASTBUILD =
  `-U_FORTIFY_SOURCE -fstack-protector -Wall -Wunused-but-set-parameter -Wno-free-nonheap-object -fno-omit-frame-pointer -std=c++0x -MD -MF bazel-out/k8-fastbuild/bin/_objs/hello/hello.pic.d -frandom-seed=bazel-out/k8-fastbuild/bin/_objs/hello/hello.pic.o -fPIC -iquote . -iquote bazel-out/k8-fastbuild/bin -iquote external/bazel_tools -iquote bazel-out/k8-fastbuild/bin/external/bazel_tools -isystem lib -isystem bazel-out/k8-fastbuild/bin/lib -fno-canonical-system-headers -Wno-builtin-macro-redefined -D__DATE__="redacted" -D__TIMESTAMP__="redacted" -D__TIME__="redacted" -c lib/hello.cc -o bazel-out/k8-fastbuild/bin/_objs/hello/hello.pic.o`.split(
    ' ',
  );
const BAZEL4_COMPILE_OPT =
  `-U_FORTIFY_SOURCE -fstack-protector -Wall -Wunused-but-set-parameter -Wno-free-nonheap-object -fno-omit-frame-pointer -g0 -O2 -D_FORTIFY_SOURCE=1 -DNDEBUG -ffunction-sections -fdata-sections -std=c++0x -MD -MF bazel-out/k8-opt/bin/_objs/hello/hello.d -frandom-seed=bazel-out/k8-opt/bin/_objs/hello/hello.o -iquote . -iquote bazel-out/k8-opt/bin -isystem lib -isystem bazel-out/k8-opt/bin/lib -fno-canonical-system-headers -Wno-builtin-macro-redefined -D__DATE__="redacted" -D__TIMESTAMP__="redacted" -D__TIME__="redacted" -c lib/hello.cc -o bazel-out/k8-opt/bin/_objs/hello/hello.o`.split(
    ' ',
  );

test("the allowlist passes Bazel's own compile flags (Bazel 4 as run, and what Bazel 5-7 and clang add)", () => {
  const ws = '/reapi';
  const at = (args: string[]) => mapArgs({ args, cwd: ws, roots: [ws], root: '/sandbox' });
  const fast = at(BAZEL4_COMPILE_FASTBUILD);
  // Relative names stay as Bazel wrote them, so the seed, __FILE__ and the dependency file match a local build.
  assert.deepEqual(fast.args.slice(1), BAZEL4_COMPILE_FASTBUILD);
  assert.deepEqual(fast.outputs, [
    '/reapi/bazel-out/k8-fastbuild/bin/_objs/hello/hello.pic.d',
    '/reapi/bazel-out/k8-fastbuild/bin/_objs/hello/hello.pic.o',
  ]);
  assert.deepEqual(fast.depFiles, ['/reapi/bazel-out/k8-fastbuild/bin/_objs/hello/hello.pic.d']);
  assert.deepEqual(at(BAZEL4_COMPILE_OPT).args.slice(1), BAZEL4_COMPILE_OPT);
  // Bazel 5-7 and clang toolchains: -no-canonical-prefixes where -fno-canonical-system-headers is missing,
  // clang's warnings and colours, C++14/17, dbg's -g, coverage off.
  const later = [
    '-no-canonical-prefixes',
    '-Wthread-safety',
    '-Wself-assign',
    '-fcolor-diagnostics',
    '-std=c++14',
    '-std=c++17',
    '-g',
    '-fdiagnostics-color=always',
    '-D_XOPEN_SOURCE=700',
  ];
  assert.ok(at([...later, '-c', 'a.cc', '-o', 'a.o']).args.includes('-no-canonical-prefixes'));
});
