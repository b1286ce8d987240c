import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { needsTools, runAccel, tempDir } from '../helpers.ts';
import {
  type BuildRun,
  buildTmp,
  CROSS_BUILD_TOOLS,
  condaBuild,
  copyFeedstocks,
  FEEDSTOCKS,
  failed,
  startUpstream,
} from './conda-build-harness.ts';

function feedstock(root: string, name: string, meta: string, build?: string): string {
  const dir = join(root, `${name}-feedstock`);
  mkdirSync(join(dir, 'recipe'), { recursive: true });
  writeFileSync(join(dir, 'recipe', 'meta.yaml'), meta);
  if (build !== undefined) writeFileSync(join(dir, 'recipe', 'build.sh'), build);
  return dir;
}

/** True when the channel holds no package (a failed build must publish nothing). */
function emptyChannel(channel: string): boolean {
  if (!existsSync(channel)) return true;
  return readdirSync(channel, { recursive: true }).every((f) => !String(f).endsWith('.conda'));
}

async function setup(t: TestContext): Promise<BuildRun & { dir: string }> {
  const dir = tempDir(t, 'accel-conda-build-err-');
  const upstream = await startUpstream(t);
  return { dir, home: join(dir, 'home'), channel: join(dir, 'channel'), upstream };
}

test(
  'a source whose sha256 differs from the recipe fails the build, stores nothing and publishes nothing',
  needsTools(...CROSS_BUILD_TOOLS),
  async (t) => {
    const run = await setup(t);
    const dir = join(run.dir, 'libgreet-feedstock');
    cpSync(join(FEEDSTOCKS, 'libgreet-feedstock'), dir, { recursive: true });
    const meta = join(dir, 'recipe', 'meta.yaml');
    writeFileSync(meta, readFileSync(meta, 'utf8').replace(/sha256: \w+/, `sha256: ${'ab'.repeat(32)}`));
    const r = await condaBuild(run, [dir]);
    failed(r, 'ACCEL_CONDA_SOURCE_SHA256');
    assert.match(r.stderr, /greet-1\.2\.0\.tar\.gz does not match/);
    assert.ok(emptyChannel(run.channel));
    const ls = await runAccel(['--home', run.home, '--json', 'store', 'info']);
    assert.equal(JSON.parse(ls.stdout.toString()).blobs <= 1, true, 'only the failed build’s log is stored');
  },
);

test(
  'a failing build script: exit 1, the log tail on stderr, the failure in conda builds, nothing published',
  needsTools(...CROSS_BUILD_TOOLS),
  async (t) => {
    const run = await setup(t);
    const dir = feedstock(
      run.dir,
      'broken',
      'package: {name: broken, version: "1.0"}\nrequirements:\n  build:\n    - make\n',
      '#!/bin/bash\necho "compiling broken"\necho "broken.c:3: error: expected ; before }" >&2\nexit 3\n',
    );
    // The workspace of a build whose process was killed is swept by the next build.
    const dead = spawnSync('true').pid as number;
    const abandoned = join(buildTmp(run), 'accel-conda-bld', `test${process.pid}`);
    mkdirSync(join(abandoned, '_h_env', 'lib'), { recursive: true });
    writeFileSync(`${abandoned}.pid`, String(dead));
    const r = await condaBuild(run, [dir]);
    failed(r, 'ACCEL_CONDA_BUILD_FAILED');
    assert.equal(existsSync(abandoned), false, 'abandoned workspace swept');
    assert.equal(existsSync(`${abandoned}.pid`), false);
    // The cause on the error line itself, then the log's end above it.
    assert.match(r.stderr, /error: broken: build\.sh failed \(exit 3\): broken\.c:3: error: expected ; before \}/);
    assert.match(r.stderr, /end of the build log ---\n[\s\S]*\ncompiling broken\n/);
    assert.ok(emptyChannel(run.channel));
    const builds = await runAccel(['--home', run.home, '--json', 'conda', 'builds']);
    const [entry] = JSON.parse(builds.stdout.toString()) as { feedstock: string; status: string; log: string }[];
    assert.equal(entry?.status, 'failed');
    const log = await runAccel(['--home', run.home, 'store', 'get', entry?.log as string]);
    assert.match(log.stdout.toString(), /compiling broken/);
  },
);

test('failing tests publish nothing, not even the outputs that passed', needsTools(...CROSS_BUILD_TOOLS), async (t) => {
  const run = await setup(t);
  const dir = feedstock(
    run.dir,
    'untested',
    [
      'package: {name: untested-split, version: "1.0"}',
      'outputs:',
      '  - name: good',
      '    files: [share/good]',
      '    test: {commands: [test -f $PREFIX/share/good]}',
      '  - name: bad',
      '    files: [share/bad]',
      '    test: {commands: [test -f $PREFIX/share/missing]}',
    ].join('\n'),
    '#!/bin/bash\nmkdir -p "$PREFIX/share"\ntouch "$PREFIX/share/good" "$PREFIX/share/bad"\n',
  );
  const r = await condaBuild(run, [dir]);
  failed(r, 'ACCEL_CONDA_TEST_FAILED');
  assert.match(r.stderr, /bad-1\.0-\w+: tests failed/);
  assert.ok(emptyChannel(run.channel));
});

test('a missing cross toolchain is named with its apt package', async (t) => {
  const run = await setup(t);
  const emptyPath = join(run.dir, 'bin');
  mkdirSync(emptyPath);
  const r = await condaBuild(run, [join(FEEDSTOCKS, 'libgreet-feedstock')], { PATH: emptyPath });
  failed(r, 'ACCEL_CONDA_NO_TOOLCHAIN');
  assert.match(r.stderr, /gcc-aarch64-linux-gnu/);
  assert.match(r.stderr, /apt-get install -y .*gcc-aarch64-linux-gnu/);
  assert.ok(emptyChannel(run.channel));
});

test(
  'host requirements that neither the channel nor the toolchain satisfy are listed',
  needsTools(...CROSS_BUILD_TOOLS),
  async (t) => {
    const run = await setup(t);
    const dir = feedstock(
      run.dir,
      'needy',
      [
        'package: {name: needy, version: "1.0"}',
        'requirements:',
        '  build: [make, some-build-tool]',
        '  host: ["libnothere >=2", libgreet]',
      ].join('\n'),
      '#!/bin/bash\ntrue\n',
    );
    const r = await condaBuild(run, [dir]);
    failed(r, 'ACCEL_CONDA_UNSATISFIABLE');
    assert.match(r.stderr, /the build environment cannot be solved: some-build-tool/);
    assert.match(r.stderr, /No candidates were found for some-build-tool/);
    assert.match(r.stderr, new RegExp(`channels searched, in priority order: ${run.channel}`));
    // Without the build tool, the host environment is what cannot be made: the spec nothing provides is named.
    const host = feedstock(
      run.dir,
      'needy-host',
      ['package: {name: needy-host, version: "1.0"}', 'requirements:', '  host: ["libnothere >=2"]'].join('\n'),
      '#!/bin/bash\ntrue\n',
    );
    const h = await condaBuild(run, [host]);
    failed(h, 'ACCEL_CONDA_UNSATISFIABLE');
    assert.match(h.stderr, /the host environment cannot be solved: libnothere >=2/);
    assert.match(h.stderr, /No candidates were found for libnothere >=2/);
    assert.ok(emptyChannel(run.channel));
  },
);

test(
  'a failing feedstock blocks only its dependents: the others still build and are published',
  needsTools(...CROSS_BUILD_TOOLS),
  async (t) => {
    const run = await setup(t);
    const feedstocks = copyFeedstocks(run.dir);
    writeFileSync(join(feedstocks, 'libshout-feedstock', 'recipe', 'build.sh'), 'echo "shout.c: fatal" >&2\nexit 1\n');
    const r = await condaBuild(run, ['--all', feedstocks, '--test', 'skip']);
    failed(r, 'ACCEL_CONDA_BUILD_FAILED');
    assert.match(r.stderr, /libshout: build\.sh failed/);
    assert.match(r.stderr, /also not built: hello \(blocked\)/);
    const published = readdirSync(run.channel, { recursive: true })
      .map(String)
      .filter((f) => f.endsWith('.conda') && !/\/lib(gcc|stdcxx)/.test(f))
      .sort();
    // (besides the toolchain's runtime, libgcc and libstdcxx, which libgreet depends on)
    assert.deepEqual(published, [
      'linux-aarch64/libgreet-1.2.0-hbb08499_0.conda',
      'linux-aarch64/libgreet-devel-1.2.0-hbb08499_0.conda',
      'noarch/greet-data-2024.1-hbf21a9e_0.conda',
    ]);
  },
);
