// conda-build's behaviour that real conda-forge recipes rely on, each on a small recipe written here: split
// recipes, builds that run what they built, the package guards (ELF architecture, true run dependencies),
// source overrides and weak pins, --keep-going. The real feedstocks themselves: conda-build-real.test.ts.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readCondaPackage } from '../../src/conda/pkg/read.ts';
import { solveWithRattler, sysrootGlibc } from '../feedstock-set.ts';
import { runAccel, runCommand, tempDir, testNeeding } from '../helpers.ts';
import {
  CROSS_BUILD_TOOLS,
  condaBuild,
  FEEDSTOCKS,
  failed,
  okJson,
  type ResultJson,
  startUpstream,
  statuses,
} from './conda-build-harness.ts';

/** Every test here runs the cross toolchain: without them it skips, naming them. */
const test = testNeeding(...CROSS_BUILD_TOOLS);

/** Writes `<root>/<name>-feedstock/recipe/<file>` for each file. */
function recipe(root: string, name: string, files: Record<string, string>): string {
  const dir = join(root, `${name}-feedstock`);
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(join(dir, 'recipe', file, '..'), { recursive: true });
    writeFileSync(join(dir, 'recipe', file), text);
  }
  return dir;
}

function record(out: ResultJson, name: string) {
  const pkg = out.results.flatMap((r) => r.packages).find((p) => p.name === name);
  assert.ok(pkg, `a package ${name} in ${JSON.stringify(out.results)}`);
  return pkg;
}

async function indexOf(channel: string, pkg: { subdir: string; filename: string }) {
  const read = await readCondaPackage(join(channel, pkg.subdir, pkg.filename));
  const json = (name: string) => JSON.parse(read.info.find((m) => m.name === `info/${name}`)?.data.toString() ?? '{}');
  return { index: json('index.json'), about: json('about.json'), files: read.pkg.map((m) => m.name) };
}

test('a split recipe as conda-build runs it: the top-level script first, outputs on its work directory with their own host prefix; programs it built run under qemu; true run dependencies', async (t) => {
  const dir = tempDir(t, 'accel-conda-fidelity-');
  const upstream = await startUpstream(t);
  const run = { home: join(dir, 'home'), channel: join(dir, 'channel'), upstream };
  const feedstock = recipe(dir, 'probe', {
    'meta.yaml': [
      'package: {name: probe-split, version: "1.0"}',
      'requirements:',
      '  build: [\'{{ compiler("c") }}\', \'{{ stdlib("c") }}\', make, coreutils]',
      'outputs:',
      '  - name: probe-dev',
      '    files: [include/probe.h]',
      '  - name: probe',
      '    script: install_probe.sh',
      '    requirements:',
      '      build: [\'{{ compiler("c") }}\', \'{{ stdlib("c") }}\']',
      '      host: [probe-dev]',
      '    test:',
      '      files: [testdata/input.txt]',
      '      source_files: [ran.txt]',
      '      commands:',
      '        - test -f input.txt && test -f ran.txt',
      '        - test "$SHLIB_EXT" = .so',
      '        - test "$PKG_CONFIG_PATH" = "$PREFIX/lib/pkgconfig:$PREFIX/share/pkgconfig"',
      '        - hello | grep -qx "hello from aarch64"',
      '  - name: probe-win',
      '    build:',
      '      skip: true  # [not win]',
      '      run_exports: [\'{{ pin_subpackage("probe-win", max_pin="x") }}\']',
      '',
    ].join('\n'),
    // gcc_bootstrap (zlib's compiler on conda-forge) is the machine's cross gcc too.
    'conda_build_config.yaml': 'c_compiler: [gcc_bootstrap]\nc_compiler_version: ["14"]\nc_stdlib_version: ["2.17"]\n',
    'build.sh': [
      'printf "#include <stdio.h>\\nint main(void){puts(\\"hello from aarch64\\");return 0;}\\n" > hello.c',
      '$CC $CFLAGS $LDFLAGS hello.c -o hello',
      // Runs what it just built: an aarch64 program, on this x86-64 machine.
      './hello > ran.txt',
      'grep -qx "hello from aarch64" ran.txt',
      'mkdir -p "$PREFIX/include" && echo "int probe;" > "$PREFIX/include/probe.h"',
      '',
    ].join('\n'),
    'install_probe.sh': [
      // The work directory as the top level left it, a fresh prefix holding only the sibling it names in host.
      'test -x hello && test -f ran.txt',
      'test -f "$PREFIX/include/probe.h"',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell variable, written as recipes write it
      'mkdir -p "$PREFIX/bin" && ${BUILD_PREFIX}/bin/install -m 755 hello "$PREFIX/bin/hello"',
      '',
    ].join('\n'),
    'testdata/input.txt': 'x\n',
  });
  const out = okJson(await condaBuild(run, [feedstock]));
  assert.deepEqual(statuses(out), { probe: 'built' });
  assert.deepEqual(out.results[0]?.packages.map((p) => p.name).sort(), ['probe', 'probe-dev']);

  const probe = await indexOf(run.channel, record(out, 'probe'));
  assert.deepEqual(probe.files, ['bin/hello'], 'the sibling’s header is not the output’s file');
  const major = (await runCommand('aarch64-linux-gnu-gcc', ['-dumpversion'])).stdout.toString().trim().split('.')[0];
  assert.ok(probe.index.depends.includes(`libgcc >=${major}`), `${probe.index.depends}`);
  // The variant says 2.17; the binary needs the sysroot's newer symbols, so the floor says what is true.
  const glibc = probe.index.depends.find((d: string) => d.startsWith('__glibc '));
  assert.match(glibc, /^__glibc >=2\.(\d+),<3\.0\.a0$/);
  assert.ok(Number(/2\.(\d+)/.exec(glibc)?.[1]) >= 34, glibc);
  const dev = await indexOf(run.channel, record(out, 'probe-dev'));
  assert.deepEqual(dev.files, ['include/probe.h']);
  assert.equal(
    dev.index.depends.find((d: string) => d.startsWith('__glibc')),
    undefined,
    'no binaries, no floor',
  );

  // The channel carries the toolchain's runtime, so an independent solver finds every dependency in it.
  const solved = await solveWithRattler(run.channel, ['probe'], sysrootGlibc());
  const answer = solved.get('probe');
  assert.ok(answer?.ok, JSON.stringify(answer));
  assert.ok(
    answer.packages.some((p) => p.startsWith(`libgcc=${major}.`)),
    answer.packages.join(' '),
  );

  // `accel conda install` puts it into a prefix, where it runs under qemu.
  const env = join(dir, 'env');
  const install = (spec: string) =>
    runAccel([
      '--home',
      run.home,
      'conda',
      'install',
      '--channel',
      run.channel,
      '--prefix',
      env,
      '--platform',
      'linux-aarch64',
      spec,
    ]);
  const installed = await install('probe');
  assert.equal(installed.code, 0, installed.stderr.toString());
  const ran = await runCommand('qemu-aarch64-static', ['-L', '/usr/aarch64-linux-gnu', join(env, 'bin', 'hello')]);
  assert.equal(ran.stdout.toString(), 'hello from aarch64\n');
  assert.ok(existsSync(join(env, 'lib', 'libgcc_s.so.1')), 'libgcc came along as a run dependency');
  const unknown = await install('nosuch');
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr.toString(), /\[ACCEL_CONDA_UNSATISFIABLE\]/);
  assert.match(unknown.stderr.toString(), /nosuch/);
});

test('a package holding build-machine code is refused, naming the file; nothing is published', async (t) => {
  const dir = tempDir(t, 'accel-conda-wrongarch-');
  const upstream = await startUpstream(t);
  const run = { home: join(dir, 'home'), channel: join(dir, 'channel'), upstream };
  const feedstock = recipe(dir, 'native', {
    'meta.yaml': "package: {name: native, version: '1'}\nrequirements:\n  build: ['{{ compiler(\"c\") }}']\n",
    // The zlib case: a build that calls the machine's gcc instead of $CC.
    'build.sh': 'echo "int main(void){return 0;}" > m.c\nmkdir -p "$PREFIX/bin"\ngcc m.c -o "$PREFIX/bin/m"\n',
  });
  const r = await condaBuild(run, [feedstock]);
  failed(r, 'ACCEL_CONDA_WRONG_ARCH');
  assert.match(r.stderr.toString(), /bin\/m is x86_64 code, not linux-aarch64/);
  assert.equal(existsSync(join(run.channel, 'linux-aarch64', 'repodata.json')), false, 'nothing published');
});

test('sources: a declared override is warned about and recorded; md5-only pins are checked; an unknown compiler lists the known ones', async (t) => {
  const dir = tempDir(t, 'accel-conda-sources-');
  const upstream = await startUpstream(t);
  const run = { home: join(dir, 'home'), channel: join(dir, 'channel'), upstream };
  const tarball = join(FEEDSTOCKS, 'upstream', 'greet-1.2.0.tar.gz');
  const md5 = createHash('md5').update(readFileSync(tarball)).digest('hex');
  const meta = (pin: string) =>
    [
      'package: {name: greetsrc, version: "1.2.0"}',
      'source:',
      `  url: ${upstream.base}/greet-1.2.0.tar.gz`,
      `  ${pin}`,
      'build: {noarch: generic}',
      'test: {commands: [test -f $PREFIX/share/greetsrc/Makefile]}',
      '',
    ].join('\n');
  const build = 'mkdir -p "$PREFIX/share/greetsrc" && cp Makefile "$PREFIX/share/greetsrc/"\n';
  const md5Feedstock = recipe(dir, 'greetsrc', { 'meta.yaml': meta(`md5: ${md5}`), 'build.sh': build });
  const byMd5 = okJson(await condaBuild(run, [md5Feedstock, '--test', 'skip']));
  assert.deepEqual(statuses(byMd5), { greetsrc: 'built' });
  assert.equal(upstream.requests.length, 1);

  writeFileSync(join(md5Feedstock, 'recipe', 'meta.yaml'), meta(`md5: ${'0'.repeat(32)}`));
  const bad = await condaBuild(run, [md5Feedstock, '--test', 'skip']);
  failed(bad, 'ACCEL_CONDA_SOURCE_SHA256');
  assert.match(bad.stderr.toString(), /does not match the recipe's md5/);

  // A dead URL and a recipe digest the local file does not match (a distribution's repack): --source.
  writeFileSync(
    join(md5Feedstock, 'recipe', 'meta.yaml'),
    meta(`sha256: ${'1'.repeat(64)}`).replace(upstream.base, 'https://upstream.invalid'),
  );
  const over = await condaBuild(run, [md5Feedstock, '--test', 'skip', '--source', `greetsrc=${tarball}`]);
  const overJson = okJson(over);
  assert.match(
    over.stderr.toString(),
    /warning: greetsrc: source https:\/\/upstream\.invalid\/greet-1\.2\.0\.tar\.gz replaced by .*greet-1\.2\.0\.tar\.gz/,
  );
  const { about } = await indexOf(run.channel, record(overJson, 'greetsrc'));
  assert.deepEqual(about.extra.accel_source_overrides, [
    {
      url: 'https://upstream.invalid/greet-1.2.0.tar.gz',
      file: tarball,
      sha256: createHash('sha256').update(readFileSync(tarball)).digest('hex'),
      recipe: `sha256:${'1'.repeat(64)}`,
    },
  ]);

  const cc = recipe(dir, 'oddcc', {
    'meta.yaml': "package: {name: oddcc, version: '1'}\nrequirements:\n  build: ['{{ compiler(\"c\") }}']\n",
    'conda_build_config.yaml': 'c_compiler: [icx]\n',
    'build.sh': 'true\n',
  });
  const odd = await condaBuild(run, [cc]);
  failed(odd, 'ACCEL_CONDA_UNKNOWN_COMPILER');
  assert.match(odd.stderr.toString(), /icx_linux-aarch64: .*known: gcc_linux-aarch64, gcc_bootstrap_linux-aarch64/);
});

test('--keep-going: a feedstock that does not render fails with those that need it, the rest builds; --json still lists each; plan follows symlinks', async (t) => {
  const dir = tempDir(t, 'accel-conda-keepgoing-');
  const upstream = await startUpstream(t);
  const run = { home: join(dir, 'home'), channel: join(dir, 'channel'), upstream };
  const real = join(dir, 'checkouts');
  recipe(real, 'broken', { 'meta.yaml': 'package: {name: broken, version: "{{ nosuch(1) }}"}\n' });
  recipe(real, 'needsbroken', {
    'meta.yaml':
      'package: {name: needsbroken, version: "1"}\nbuild: {noarch: generic}\nrequirements: {host: [broken]}\n',
    'build.sh': 'mkdir -p "$PREFIX/share" && touch "$PREFIX/share/needsbroken"\n',
  });
  recipe(real, 'fine', {
    'meta.yaml': 'package: {name: fine, version: "1"}\nbuild: {noarch: generic}\n',
    'build.sh': 'mkdir -p "$PREFIX/share" && touch "$PREFIX/share/fine"\n',
  });
  // The working set is a directory of symlinks to checkouts.
  const set = join(dir, 'set');
  mkdirSync(set);
  for (const f of ['broken', 'needsbroken', 'fine'])
    symlinkSync(join(real, `${f}-feedstock`), join(set, `${f}-feedstock`));

  const stop = await condaBuild(run, ['--all', set]);
  assert.equal(stop.code, 1);
  assert.match(stop.stderr.toString(), /broken-feedstock\/recipe\/meta\.yaml:1: .*nosuch/);

  const going = await condaBuild(run, ['--all', set, '--keep-going']);
  assert.equal(going.code, 1, 'a failure is still a failure');
  const json = JSON.parse(going.stdout.toString()) as ResultJson;
  assert.deepEqual(statuses(json), { broken: 'failed', fine: 'built', needsbroken: 'blocked' });
  const broken = json.results.find((r) => r.feedstock === 'broken') as unknown as { error: { code: string } };
  assert.match(broken.error.code, /^ACCEL_CONDA_/);

  const plan = await runAccel(['--json', 'conda', 'plan', set, '--keep-going']);
  assert.equal(plan.code, 1);
  const p = JSON.parse(plan.stdout.toString());
  assert.deepEqual(p.order, ['fine', 'needsbroken']);
  assert.deepEqual(
    p.failed.map((f: { feedstock: string; needed_by: string[] }) => [f.feedstock, f.needed_by]),
    [['broken', ['needsbroken']]],
  );
});
