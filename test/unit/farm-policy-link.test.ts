import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { checkTool, type MapArgsOptions, mapArgs, paramsFiles, Refusal, type Tool } from '../../src/farm/policy.ts';

// An REAPI action's input root on the syncer (/reapi) and the job root the worker maps it to.
const ws = '/reapi';
const root = '/sandbox';

/** mapArgs as the syncer calls it for an action: params files read from the action's own input tree. */
function action(tool: Tool, args: string[], params: Record<string, string> = {}, extra: Partial<MapArgsOptions> = {}) {
  const files = new Map(Object.entries(params).map(([p, text]) => [`${ws}/${p}`, text]));
  return mapArgs({ tool, args, cwd: ws, roots: [ws], root, readParams: (p) => files.get(p), ...extra });
}

/** Only ASCII: a gRPC status message is ASCII, anything else reaches Bazel as '?'. */
const ascii = (text: string) => [...text].every((c) => c.charCodeAt(0) < 0x80);

function refused(fn: () => unknown, code: string, re: RegExp, label: string) {
  assert.throws(fn, (err: unknown) => err instanceof Refusal && err.code === code && re.test(err.message), label);
}

// The params files Bazel 4 (Debian's 4.2) wrote for a cc_library, a cc_binary (linkshared), a cc_binary and
// the same cc_binary under -c opt --dynamic_mode=fully, one argument a line: unix_cc_toolchain_config.bzl's
// archiver_flags, shared_flag, output_execpath_flags, strip_debug_symbols, libraries_to_link (--start-lib
// groups), runtime_library_search_directories and library_search_directories features around
// unix_cc_configure.bzl's link_flags, link_libs and opt_link_flags.
const AR_PARAMS = 'rcsD\nbazel-out/k8-fastbuild/bin/libhello.a\nbazel-out/k8-fastbuild/bin/_objs/hello/hello.pic.o\n';
const SHARED_PARAMS = `-shared
-o
bazel-out/k8-fastbuild/bin/libshared.so
-Wl,-S
-fuse-ld=gold
-Wl,-no-as-needed
-Wl,-z,relro,-z,now
-B/usr/bin
-pass-exit-codes
bazel-out/k8-fastbuild/bin/_objs/libshared.so/shared.pic.o
-lstdc++
-lm
`;
const BINARY_PARAMS = `-o
bazel-out/k8-fastbuild/bin/main
-Wl,-S
-fuse-ld=gold
-Wl,-no-as-needed
-Wl,-z,relro,-z,now
-B/usr/bin
-pass-exit-codes
bazel-out/k8-fastbuild/bin/_objs/main/main.pic.o
-Wl,--start-lib
bazel-out/k8-fastbuild/bin/_objs/hello/hello.pic.o
-Wl,--end-lib
-lstdc++
-lm
`;
const OPT_DYNAMIC_PARAMS = `-o
bazel-out/k8-opt/bin/main
-Wl,-rpath,$ORIGIN/_solib_k8/
-Lbazel-out/k8-opt/bin/_solib_k8
-fuse-ld=gold
-Wl,-no-as-needed
-Wl,-z,relro,-z,now
-B/usr/bin
-pass-exit-codes
-Wl,--gc-sections
bazel-out/k8-opt/bin/_objs/main/main.o
-llibhello
-lstdc++
-lm
`;
const STRIP =
  '-S -p -o bazel-out/k8-fastbuild/bin/main.stripped -R .gnu.switches.text.quote_paths -R .gnu.switches.text.bracket_paths -R .gnu.switches.text.system_paths -R .gnu.switches.text.cpp_defines -R .gnu.switches.text.cpp_includes -R .gnu.switches.text.cl_args -R .gnu.switches.text.lipo_info -R .gnu.switches.text.annotation bazel-out/k8-fastbuild/bin/main'.split(
    ' ',
  );

test("Bazel 4's archive, links and strip map as they ran: params files expanded, outputs listed", () => {
  assert.deepEqual(checkTool('/usr/bin/ar', ['gcc']), { tool: 'ar', name: 'ar' });
  assert.deepEqual(checkTool('/usr/bin/gcc', ['gcc']), { tool: 'compiler', name: 'gcc' });
  assert.deepEqual(checkTool('/usr/bin/strip', ['gcc']), { tool: 'strip', name: 'strip' });
  assert.deepEqual(paramsFiles(['@bazel-out/k8-fastbuild/bin/libhello.a-2.params'], ws), [
    '/reapi/bazel-out/k8-fastbuild/bin/libhello.a-2.params',
  ]);

  const ar = action('ar', ['@bazel-out/k8-fastbuild/bin/libhello.a-2.params'], {
    'bazel-out/k8-fastbuild/bin/libhello.a-2.params': AR_PARAMS,
  });
  assert.equal(ar.kind, 'ar');
  assert.deepEqual(ar.args, AR_PARAMS.trim().split('\n'));
  assert.deepEqual(ar.outputs, ['/reapi/bazel-out/k8-fastbuild/bin/libhello.a']);

  const shared = action('compiler', ['@bazel-out/k8-fastbuild/bin/libshared.so-2.params'], {
    'bazel-out/k8-fastbuild/bin/libshared.so-2.params': SHARED_PARAMS,
  });
  assert.equal(shared.kind, 'link');
  assert.deepEqual(shared.args, [`-ffile-prefix-map=${root}=`, ...SHARED_PARAMS.trim().split('\n')]);
  assert.deepEqual(shared.outputs, ['/reapi/bazel-out/k8-fastbuild/bin/libshared.so']);
  assert.deepEqual(shared.depFiles, []);

  for (const [out, text] of [
    ['bazel-out/k8-fastbuild/bin/main', BINARY_PARAMS],
    ['bazel-out/k8-opt/bin/main', OPT_DYNAMIC_PARAMS],
  ] as const) {
    const link = action('compiler', [`@${out}-2.params`], { [`${out}-2.params`]: text });
    assert.equal(link.kind, 'link');
    assert.deepEqual(link.args.slice(1), text.trim().split('\n'));
    assert.deepEqual(link.outputs, [`${ws}/${out}`]);
  }

  const strip = action('strip', STRIP);
  assert.equal(strip.kind, 'strip');
  assert.deepEqual(strip.args, STRIP);
  assert.deepEqual(strip.outputs, ['/reapi/bazel-out/k8-fastbuild/bin/main.stripped']);
});

test('links: paths the linker reads or writes are checked and mapped word by word', () => {
  const link = action('compiler', [
    '-shared',
    '-o',
    '/reapi/out/libx.so',
    '-Wl,-soname,libx.so.1,--version-script,/reapi/src/x.lds',
    '-Xlinker',
    '-rpath',
    '-Xlinker',
    '$ORIGIN/../lib',
    '-Wl,-Map=out/x.map',
    '-Wl,-T,src/x.ld',
    '-L/usr/lib/x86_64-linux-gnu',
    '-Wl,--push-state,-as-needed',
    '-lstdc++',
    '-Wl,--pop-state',
    '-Wl,--build-id=md5,--hash-style=gnu,-O1,--gc-sections,--whole-archive',
    'src/a.o',
    '-Wl,--no-whole-archive',
    '-l:libfoo.so.1',
    '-static-libgcc',
    '-fuse-ld=lld',
  ]);
  assert.ok(link.args.includes(`-Wl,-soname,libx.so.1,--version-script,${root}/reapi/src/x.lds`));
  assert.ok(link.args.includes(`${root}/reapi/out/libx.so`));
  const x = link.args.indexOf('-Xlinker');
  assert.deepEqual(link.args.slice(x, x + 4), ['-Xlinker', '-rpath', '-Xlinker', '$ORIGIN/../lib']);
  assert.ok(link.args.includes('-Wl,-Map=out/x.map') && link.args.includes('-Wl,-T,src/x.ld'));
  assert.deepEqual(link.outputs.sort(), ['/reapi/out/libx.so', '/reapi/out/x.map']);
  // A clang link, Bazel 6/7's link_libs, and coverage's --coverage.
  const later = action('compiler', [
    '-o',
    'bin/t',
    'a.o',
    '-fuse-ld=gold',
    '-B/usr/bin',
    '-Wl,-no-as-needed',
    '-Wl,-z,relro,-z,now',
    '-pass-exit-codes',
    '-Wl,--push-state,-as-needed',
    '-lm',
    '-Wl,--pop-state',
    '-no-pie',
    '-pthread',
    '--coverage',
    '-Wl,-rpath,$EXEC_ORIGIN/_solib_k8/',
    '-Wl,--gdb-index',
    '-no-canonical-prefixes',
  ]);
  assert.equal(later.kind, 'link');
  // objcopy as a debug-link step would call it.
  const objcopy = action('objcopy', ['--only-keep-debug', '-R', '.comment', 'bin/t', 'bin/t.debug']);
  assert.deepEqual(objcopy.outputs, ['/reapi/bin/t.debug']);
  const debuglink = action('objcopy', [
    '--add-gnu-debuglink=bin/t.debug',
    '--add-section',
    '.x=src/x.bin',
    'bin/t',
    'o',
  ]);
  assert.deepEqual(debuglink.args, ['--add-gnu-debuglink=bin/t.debug', '--add-section', '.x=src/x.bin', 'bin/t', 'o']);
  // The compiler's own way of linking, unchanged for compiles: `-c` makes it a compile, -Wl refused there.
  refused(
    () => action('compiler', ['-c', 'a.c', '-Wl,-z,now']),
    'ACCEL_FARM_ARG_REFUSED',
    /passes options to the linker/,
    'compile',
  );
});

test('each refused link, archive and strip spelling is an attack that names the word refused', () => {
  const attacks: [Tool, string[], RegExp][] = [
    ['compiler', ['-Wl,--plugin=/tmp/x.so'], /argument -Wl,--plugin=\/tmp\/x\.so is refused.*linker plugin/],
    ['compiler', ['-Wl,-plugin,/tmp/x.so'], /-Wl,-plugin,\/tmp\/x\.so .*linker plugin/],
    ['compiler', ['-Xlinker', '--plugin', '-Xlinker', 'x.so'], /linker plugin/],
    ['compiler', ['-Wl,-plugin-opt,obj-path=/tmp/x'], /linker plugin/],
    ['compiler', ['-Wl,--plug=/tmp/x.so'], /known-safe linker options/],
    ['compiler', ['-Wl,--lto-obj-path=/tmp/x'], /LTO/],
    ['compiler', ['-fuse-ld=/tmp/evil-ld'], /linker by path/],
    ['compiler', ['-fuse-ld=../../tmp/ld'], /linker by path/],
    ['compiler', ['--ld-path=/tmp/ld'], /long options/],
    ['compiler', ['-Wl,-T,/tmp/evil.ld'], /outside/],
    ['compiler', ['-Wl,--script=/etc/evil.ld'], /outside/],
    ['compiler', ['-Wl,-T/etc/evil.ld'], /outside/],
    ['compiler', ['-T', '/tmp/evil.ld'], /outside/],
    ['compiler', ['-Wl,--version-script,../../etc/x'], /outside/],
    ['compiler', ['-Wl,@/tmp/args'], /linker arguments from a file/],
    ['compiler', ['-Wl,@src/args'], /linker arguments from a file/],
    ['compiler', ['-B/tmp/bin'], /programs/],
    ['compiler', ['-Bsrc/'], /programs/],
    ['compiler', ['-B', '/usr/lib/evil'], /programs/],
    ['compiler', ['-specs=/tmp/x.specs'], /programs/],
    ['compiler', ['--sysroot=/opt/sdk'], /outside/],
    ['compiler', ['-L/etc'], /outside/],
    ['compiler', ['-Wl,-L,/home/u'], /outside/],
    ['compiler', ['-Wl,-L=/lib'], /value/],
    ['compiler', ['-Wl,-o,/tmp/x'], /only output/],
    ['compiler', ['-Wl,--output=/tmp/x'], /only output/],
    ['compiler', ['-Wl,--sysroot=/'], /path or a library at run time/],
    ['compiler', ['-Wl,--audit,/tmp/x.so'], /path or a library at run time/],
    ['compiler', ['-Wl,-z,evil'], /value/],
    ['compiler', ['-Wl,-rpath'], /missing its value/],
    // gcc puts a.o between the two: ld reads `-rpath a.o -plugin=x`, so the value must be in the same run.
    ['compiler', ['-Wl,-rpath', 'src/a.o', '-Wl,-plugin=/tmp/x.so'], /-Wl,-rpath is refused.*missing its value/],
    ['compiler', ['-Xlinker', '-soname', '-lm', '-Xlinker', '--plugin=/tmp/x.so'], /-Xlinker -soname .*missing/],
    ['compiler', ['-Wl,--some-future-option'], /known-safe linker options/],
    ['compiler', ['/etc/shadow'], /outside/],
    ['compiler', ['-Wl,/etc/shadow'], /outside/],
    ['compiler', ['@/tmp/params'], /outside/],
    ['compiler', ['-Xclang', '-load'], /clang/],
    ['ar', ['--plugin', '/tmp/x.so', 'rcs', 'x.a', 'a.o'], /ar operation/],
    ['ar', ['x', 'lib.a'], /ar operation/],
    ['ar', ['p', 'lib.a'], /ar operation/],
    ['ar', ['rcsT', 'x.a', 'a.o'], /ar operation/],
    ['ar', ['rcsD', 'x.a', '/etc/shadow'], /outside/],
    ['ar', ['rcsD', 'x.a', '--plugin=/tmp/x.so'], /member file/],
    ['ar', ['rcsD', '../../../tmp/x.a', 'a.o'], /^$/],
    ['strip', ['-S', 'bin/main'], /in place/],
    ['strip', ['--plugin', '/tmp/x.so', '-o', 'o', 'i'], /strip options/],
    ['strip', ['-o', 'o', '/home/u/.ssh/id_rsa'], /outside/],
    ['strip', ['--strip-debug', '-o', 'o', '-R', '$(id)', 'i'], /value/],
    ['objcopy', ['--add-section', '.x=/etc/shadow', 'a', 'b'], /outside/],
    ['objcopy', ['--update-section', '.x=/home/u/secret', 'a', 'b'], /outside/],
    ['objcopy', ['--dump-section', '.text=/tmp/x', 'a', 'b'], /objcopy options/],
    ['objcopy', ['--add-gnu-debuglink=/root/x', 'a', 'b'], /outside/],
    ['objcopy', ['--only-keep-debug', 'a'], /in place/],
    ['objcopy', ['--keep-symbols=/etc/shadow', 'a', 'b'], /objcopy options/],
  ];
  for (const [tool, args, re] of attacks) {
    const full = tool === 'compiler' ? ['-o', 'out', 'a.o', ...args] : args;
    if (re.source === '^$') {
      // Accepted, but its output cannot leave the job.
      assert.deepEqual(action(tool, full).outputs, ['/tmp/x.a']);
      assert.ok(action(tool, full).args.includes(`${root}/tmp/x.a`));
      continue;
    }
    assert.throws(
      () => action(tool, full),
      (err: unknown) =>
        err instanceof Refusal &&
        /^ACCEL_FARM_(ARG_REFUSED|OUTSIDE_TREE)$/.test(err.code) &&
        re.test(err.message) &&
        // The message reaches Bazel as a gRPC status: ASCII only.
        ascii(err.message),
      `${tool} ${args.join(' ')}`,
    );
  }
  // -Map into the job is an output; outside it is mapped into the job too, never written where it says.
  const map = action('compiler', ['-o', 'out', 'a.o', '-Wl,-Map=/home/worker/.bashrc']);
  assert.ok(map.args.includes(`-Wl,-Map=${root}/home/worker/.bashrc`));
  assert.deepEqual(map.outputs.sort(), ['/home/worker/.bashrc', '/reapi/out']);
});

test('params files: only inside the roots, only as inputs of the job, never nested', () => {
  refused(() => action('ar', ['@/etc/params']), 'ACCEL_FARM_OUTSIDE_TREE', /params file @\/etc\/params/, 'outside');
  refused(() => action('ar', ['@p/missing.params']), 'ACCEL_FARM_BAD_JOB', /not among the job's inputs/, 'missing');
  refused(
    () => action('compiler', ['@a.params'], { 'a.params': '-o x a.o @b.params' }),
    'ACCEL_FARM_ARG_REFUSED',
    /@b\.params .*inside params file/,
    'nested',
  );
  refused(
    () => mapArgs({ args: ['@a.params'], cwd: ws, roots: [ws], root }),
    'ACCEL_FARM_ARG_REFUSED',
    /not part of the job/,
    'no reader',
  );
  // What a params file holds is checked like the command line: a plugin inside one is refused by its word.
  assert.throws(
    () => action('compiler', ['@a.params'], { 'a.params': "-o x 'a b.o' -Wl,--plugin=/tmp/x.so" }),
    (err: unknown) => err instanceof Refusal && err.argument === '-Wl,--plugin=/tmp/x.so',
  );
  // gcc's quoting: quotes group, backslashes escape.
  const quoted = action('compiler', ['@a.params'], { 'a.params': `-o x "a b.o" c\\ d.o '-DX="1"'` });
  assert.deepEqual(quoted.args.slice(1), ['-o', 'x', 'a b.o', 'c d.o', '-DX="1"']);
});

test('checkTool: binutils by name or from the system bin directories, compilers as the allowlist says', () => {
  assert.deepEqual(checkTool('aarch64-linux-gnu-ar', ['gcc']), { tool: 'ar', name: 'aarch64-linux-gnu-ar' });
  assert.deepEqual(checkTool('/bin/objcopy', []), { tool: 'objcopy', name: 'objcopy' });
  assert.deepEqual(checkTool('/usr/local/bin/g++', ['g++']), { tool: 'compiler', name: 'g++' });
  for (const program of ['/tmp/ar', './strip', 'python3', '/usr/bin/python3', 'gcc-ar', '/usr/bin/../../tmp/gcc']) {
    assert.throws(
      () => checkTool(program, ['gcc']),
      (err: unknown) => err instanceof Refusal && err.code === 'ACCEL_FARM_COMPILER_REFUSED',
      program,
    );
  }
});

test('every refusal reason in the compiler model and the policy is ASCII (gRPC status messages)', () => {
  for (const file of ['allowed.ts', 'link.ts', 'tools.ts', 'options.ts']) {
    const text = readFileSync(new URL(`../../src/compiler/${file}`, import.meta.url), 'utf8');
    assert.ok(ascii(text), file);
  }
  assert.ok(ascii(readFileSync(new URL('../../src/farm/policy.ts', import.meta.url), 'utf8')), 'policy.ts');
});
