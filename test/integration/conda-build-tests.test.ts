import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readCondaPackage } from '../../src/conda/pkg/read.ts';
import { tempDir, testNeeding } from '../helpers.ts';
import { CROSS_BUILD_TOOLS, condaBuild, failed, okJson, startUpstream, statuses } from './conda-build-harness.ts';

/** Every test here runs the cross toolchain: without them it skips, naming them. */
const test = testNeeding(...CROSS_BUILD_TOOLS);

test('package tests: run_test.sh runs, machine tools in test/requires are not packages, --test skip skips', async (t) => {
  const dir = tempDir(t, 'accel-conda-build-tests-');
  const upstream = await startUpstream(t);
  const run = { home: join(dir, 'home'), channel: join(dir, 'channel'), upstream };
  const recipe = join(dir, 'tools-feedstock', 'recipe');
  mkdirSync(recipe, { recursive: true });
  writeFileSync(
    join(recipe, 'meta.yaml'),
    [
      'package: {name: tools, version: "1.0"}',
      'build: {noarch: generic}',
      'test:',
      '  requires: [make]',
      '  commands:',
      '    - make --version',
      '    - test -f $PREFIX/share/tools/marker',
    ].join('\n'),
  );
  writeFileSync(
    join(recipe, 'build.sh'),
    'mkdir -p "$PREFIX/share/tools"\necho built > "$PREFIX/share/tools/marker"\n',
  );
  writeFileSync(join(recipe, 'run_test.sh'), 'grep -qx nope "$PREFIX/share/tools/marker"\n');

  // run_test.sh runs after the commands, and fails here: the marker says "built".
  const failing = await condaBuild(run, [join(dir, 'tools-feedstock')]);
  failed(failing, 'ACCEL_CONDA_TEST_FAILED');
  assert.match(failing.stderr.toString(), /tests failed \(exit 1\), at `bash -e .*run_test\.sh'?`/);
  const skipped = okJson(await condaBuild(run, [join(dir, 'tools-feedstock'), '--test', 'skip']));
  assert.deepEqual(statuses(skipped), { tools: 'built' });

  writeFileSync(join(recipe, 'run_test.sh'), 'grep -qx built "$PREFIX/share/tools/marker"\n');
  const tested = okJson(await condaBuild(run, [join(dir, 'tools-feedstock')]));
  assert.deepEqual(statuses(tested), { tools: 'built' });
  assert.deepEqual(
    tested.results[0]?.packages.map((p) => `${p.subdir}/${p.filename}`),
    ['noarch/tools-1.0-hbf21a9e_0.conda'],
  );
});

test('build scripts see conda-forge’s cross-build variables', async (t) => {
  const dir = tempDir(t, 'accel-conda-build-env-');
  const upstream = await startUpstream(t);
  const run = { home: join(dir, 'home'), channel: join(dir, 'channel'), upstream };
  const recipe = join(dir, 'envdump-feedstock', 'recipe');
  mkdirSync(recipe, { recursive: true });
  writeFileSync(
    join(recipe, 'meta.yaml'),
    'package: {name: envdump, version: "1.0"}\nrequirements:\n  build: [gcc_linux-aarch64 12, gxx_linux-aarch64 12, sysroot_linux-aarch64 2.17, make]\n',
  );
  writeFileSync(
    join(recipe, 'build.sh'),
    [
      'mkdir -p "$PREFIX/share/envdump"',
      'env | sort > "$PREFIX/share/envdump/env.txt"',
      'for a in $MESON_ARGS; do if [ -f "$a" ]; then cp "$a" "$PREFIX/share/envdump/cross.txt"; fi; done',
      '',
    ].join('\n'),
  );
  const out = okJson(await condaBuild(run, [join(dir, 'envdump-feedstock'), '--test', 'skip']));
  const pkg = out.results[0]?.packages[0];
  assert.ok(pkg);
  const read = await readCondaPackage(join(run.channel, pkg.subdir, pkg.filename));
  const text = read.pkg.find((m) => m.name === 'share/envdump/env.txt')?.data.toString() ?? '';
  const env = Object.fromEntries(
    text.split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  const prefix = env.PREFIX as string;
  assert.equal(prefix.length, 255, 'PREFIX is padded');
  assert.match(prefix, /_h_env_placehold/);
  assert.equal((env.BUILD_PREFIX as string).length, 255);
  assert.equal(env.CC, 'aarch64-linux-gnu-gcc');
  assert.equal(env.AR, 'aarch64-linux-gnu-ar');
  assert.equal(env.RANLIB, 'aarch64-linux-gnu-ranlib');
  assert.equal(env.HOST, 'aarch64-linux-gnu');
  assert.equal(env.BUILD, 'x86_64-linux-gnu');
  assert.equal(env.CONDA_BUILD_CROSS_COMPILATION, '1');
  assert.match(env.CROSSCOMPILING_EMULATOR as string, /qemu-aarch64-static$/);
  assert.equal(env.target_platform, 'linux-aarch64');
  assert.match(env.CPU_COUNT as string, /^\d+$/);
  assert.ok((env.SRC_DIR as string).endsWith('/work'));
  assert.ok((env.CFLAGS as string).includes(`-isystem ${prefix}/include`));
  // Every variable conda-forge's compiler activation exports for a cross build, each naming an aarch64 tool.
  const tools = ['CC', 'CXX', 'CPP', 'GCC', 'GXX', 'AR', 'AS', 'LD', 'NM', 'RANLIB', 'STRIP', 'OBJCOPY', 'OBJDUMP'];
  tools.push('READELF', 'ADDR2LINE', 'CXXFILT', 'ELFEDIT', 'SIZE', 'STRINGS');
  // Command names, as conda-forge's activation sets them (found on PATH), not paths.
  for (const name of tools) {
    const file = env[name] as string;
    assert.match(file ?? '', /^aarch64-linux-gnu-[^/]+$/, `${name}=${file}`);
    assert.ok(existsSync(join('/usr/bin', file)), `${name} exists`);
  }
  for (const name of ['CXXFLAGS', 'CPPFLAGS', 'DEBUG_CFLAGS', 'DEBUG_CXXFLAGS', 'DEBUG_CPPFLAGS']) {
    assert.ok((env[name] as string).includes(`-isystem ${prefix}/include`), name);
  }
  assert.equal(env.host_alias, 'aarch64-linux-gnu');
  assert.equal(env.build_alias, 'x86_64-linux-gnu');
  assert.equal(env.CONDA_BUILD_SYSROOT, '/usr/aarch64-linux-gnu');
  assert.equal(env.SHLIB_EXT, '.so');
  assert.equal(env.PKG_CONFIG_PATH, `${prefix}/lib/pkgconfig:${prefix}/share/pkgconfig`);
  assert.equal(env.PKG_CONFIG_LIBDIR, env.PKG_CONFIG_PATH, 'pkg-config never finds the build machine’s .pc files');
  const cross = /--cross-file (\S+)/.exec(env.MESON_ARGS as string)?.[1];
  assert.ok(cross, `MESON_ARGS names a cross file: ${env.MESON_ARGS}`);
  assert.match(env.MESON_ARGS as string, new RegExp(`--prefix=${prefix}`));
  const crossFile = read.pkg.find((m) => m.name === 'share/envdump/cross.txt')?.data.toString() ?? '';
  assert.match(crossFile, /^c = 'aarch64-linux-gnu-gcc'$/m);
  assert.match(crossFile, /^cpu_family = 'aarch64'$/m);
  assert.match(crossFile, /^exe_wrapper = \['[^']*qemu-aarch64-static', '-L', '\/usr\/aarch64-linux-gnu'\]$/m);
  assert.ok((env.LDFLAGS as string).includes(`-Wl,-rpath-link,${prefix}/lib`));
  assert.ok((env.LDFLAGS as string).includes(`-L${prefix}/lib`));
  assert.ok((env.CMAKE_ARGS as string).includes('-DCMAKE_SYSTEM_PROCESSOR=aarch64'));
  assert.ok((env.PATH as string).startsWith(`${env.BUILD_PREFIX}/bin:`));
  assert.equal(env.EXAMPLES_UPSTREAM, undefined, 'the caller’s environment does not leak in');
});

test('--test skip builds for linux-aarch64 on a machine without qemu; testing there names the package to install', async (t) => {
  const dir = tempDir(t, 'accel-conda-build-noqemu-');
  const upstream = await startUpstream(t);
  const run = { home: join(dir, 'home'), channel: join(dir, 'channel'), upstream };
  const recipe = join(dir, 'hi-feedstock', 'recipe');
  mkdirSync(recipe, { recursive: true });
  writeFileSync(
    join(recipe, 'meta.yaml'),
    [
      'package: {name: hi, version: "1.0"}',
      'requirements:',
      '  build: ["{{ compiler(\'c\') }}"]',
      'test:',
      '  commands: [hi]',
    ].join('\n'),
  );
  writeFileSync(
    join(recipe, 'build.sh'),
    'mkdir -p "$PREFIX/bin"\nprintf "int main(void){return 0;}\\n" > hi.c\n$CC hi.c -o "$PREFIX/bin/hi"\n',
  );
  // This machine as one without qemu-user-static: every program on PATH but the emulators.
  const bin = join(dir, 'bin-without-qemu');
  mkdirSync(bin);
  for (const d of (process.env.PATH ?? '').split(':').filter(Boolean)) {
    let names: string[] = [];
    try {
      names = readdirSync(d);
    } catch {
      continue;
    }
    for (const name of names) {
      if (name.startsWith('qemu-') || existsSync(join(bin, name))) continue;
      symlinkSync(join(d, name), join(bin, name));
    }
  }
  const env = { PATH: bin };
  const skipped = okJson(await condaBuild(run, [join(dir, 'hi-feedstock'), '--test', 'skip'], env));
  assert.deepEqual(statuses(skipped), { hi: 'built' });
  const tested = await condaBuild(run, [join(dir, 'hi-feedstock')], env);
  assert.notEqual(tested.code, 0);
  assert.match(tested.stderr, /qemu-user-static/, tested.stderr);
  t.diagnostic(tested.stderr.split('\n').find((l) => l.includes('qemu')) ?? '');
});
