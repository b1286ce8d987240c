// rattler-build recipes (recipe.yaml) built end to end for linux-aarch64 from the examples' local upstream: a
// cache (staging) build split into outputs by files globs, a second source kept unpacked under its file_name,
// script tests that compile and run a program under qemu, package_contents, pin_subpackage(exact=true), and
// ignore_run_exports in a second v1 feedstock that builds on the first in the same run.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sha256, tempDir, testNeeding } from '../helpers.ts';
import {
  CROSS_BUILD_TOOLS,
  condaBuild,
  FEEDSTOCKS,
  failed,
  okJson,
  startUpstream,
  statuses,
} from './conda-build-harness.ts';

const test = testNeeding(...CROSS_BUILD_TOOLS, 'unzip', 'zstd', 'tar');

const UPSTREAM = join(FEEDSTOCKS, 'upstream');
const GREET_SHA = sha256(readFileSync(join(UPSTREAM, 'greet-1.2.0.tar.gz')));
const DATA_SHA = sha256(readFileSync(join(UPSTREAM, 'greet-data-2024.1.tar.gz')));

const GREET = `schema_version: 1
context:
  version: "1.2.0"
  upstream: \${{ env.get("EXAMPLES_UPSTREAM") }}
recipe:
  name: greet-split
  version: \${{ version }}
source:
  - url: \${{ upstream }}/greet-\${{ version }}.tar.gz
    sha256: ${GREET_SHA}
  - url: \${{ upstream }}/greet-data-2024.1.tar.gz
    sha256: ${DATA_SHA}
    file_name: greet-data.tar.gz
    target_directory: extra
build:
  number: 3
  skip: win
cache:
  requirements:
    build:
      - \${{ compiler('c') }}
      - \${{ stdlib('c') }}
      - make
  build:
    script:
      env:
        GREET_SHARE: share/greet
      content:
        - make -j"\${CPU_COUNT:-1}" CC="$CC" CFLAGS="$CFLAGS" LDFLAGS="$LDFLAGS"
        - make install PREFIX="$PREFIX"
        - mkdir -p "$PREFIX/$GREET_SHARE"
        - cp extra/greet-data.tar.gz "$PREFIX/$GREET_SHARE/"
outputs:
  - package:
      name: libgreet
    build:
      files:
        - lib/libgreet.so.*
        - share/greet/**
    requirements:
      build:
        - \${{ compiler('c') }}
      run_exports:
        - \${{ pin_subpackage('libgreet', upper_bound='x.x') }}
    tests:
      - package_contents:
          files:
            exists:
              - lib/libgreet.so.1
              - share/greet/*.tar.gz
            not_exists:
              - include/greet.h
  - package:
      name: libgreet-devel
    build:
      files:
        include: [include/**, lib/libgreet.so]
        exclude: [lib/libgreet.so.*]
    requirements:
      run:
        - \${{ pin_subpackage('libgreet', exact=true) }}
    tests:
      - package_contents:
          include: [greet.h]
          lib: [greet]
      - script:
          - $CC $CFLAGS -o hello hello.c -I"$PREFIX/include" -L"$PREFIX/lib" -lgreet -Wl,-rpath,"$PREFIX/lib"
          - ./hello | grep -x 'Hello, aarch64!'
        requirements:
          build:
            - \${{ compiler('c') }}
        files:
          recipe:
            - hello.c
about:
  license: MIT
  summary: greetings, split by a cache build
`;

const HELLO_C = `#include <stdio.h>
#include <greet.h>
int main(void) {
  char buf[64];
  greet_format(buf, sizeof buf, "aarch64");
  puts(buf);
  return 0;
}
`;

// A second v1 feedstock on the first: its host has libgreet, whose run_exports would pin it, and it drops that
// export by name, so its own bare \`run: libgreet\` stays bare.
const GREETER = `package:
  name: greeter
  version: "0.1"
build:
  script: build
requirements:
  build:
    - \${{ compiler('c') }}
    - \${{ stdlib('c') }}
  host:
    - libgreet
    - libgreet-devel
  run:
    - libgreet
  ignore_run_exports:
    by_name:
      - libgreet
tests:
  - script: greeter | grep -x 'Hello, greeter!'
`;

const GREETER_SH = `set -eux
mkdir -p "$PREFIX/bin"
printf '#include <stdio.h>\\n#include <greet.h>\\nint main(void){char b[64];greet_format(b,sizeof b,"greeter");puts(b);return 0;}\\n' > greeter.c
$CC $CFLAGS -I"$PREFIX/include" -o "$PREFIX/bin/greeter" greeter.c $LDFLAGS -L"$PREFIX/lib" -lgreet
`;

function write(dir: string, files: Record<string, string>): void {
  for (const [f, text] of Object.entries(files)) {
    mkdirSync(join(dir, f, '..'), { recursive: true });
    writeFileSync(join(dir, f), text);
  }
}

test('v1 recipes build for linux-aarch64: a cache build split by files, file_name sources, script tests under qemu, exact pins, ignore_run_exports', async (t) => {
  const dir = tempDir(t, 'accel-conda-v1-');
  const set = join(dir, 'set');
  write(join(set, 'greet-feedstock', 'recipe'), { 'recipe.yaml': GREET, 'hello.c': HELLO_C });
  // No sources of its own: the work directory is empty, and build: script: build names build.sh.
  write(join(set, 'greeter-feedstock', 'recipe'), { 'recipe.yaml': GREETER, 'build.sh': GREETER_SH });
  const upstream = await startUpstream(t);
  const run = { home: join(dir, 'home'), channel: join(dir, 'channel'), upstream };
  const out = okJson(await condaBuild(run, ['--all', set]));
  assert.deepEqual(statuses(out), { greet: 'built', greeter: 'built' });

  const repodata = JSON.parse(readFileSync(join(run.channel, 'linux-aarch64', 'repodata.json'), 'utf8'));
  const records = Object.entries(repodata['packages.conda']) as [
    string,
    { name: string; version: string; build: string; build_number: number; depends: string[] },
  ][];
  const byName = (n: string) => {
    const r = records.find(([, x]) => x.name === n);
    assert.ok(r, `${n} in ${records.map(([f]) => f).join(' ')}`);
    return r;
  };
  const [libFile, lib] = byName('libgreet');
  const [develFile, devel] = byName('libgreet-devel');
  const [greeterFile, greeter] = byName('greeter');
  assert.equal(lib.build_number, 3);
  assert.ok(devel.depends.includes(`libgreet 1.2.0 ${lib.build}`), devel.depends.join(', '));
  // libgreet's run_exports (>=1.2.0,<1.3.0a0) were ignored by name: greeter's own bare requirement stays.
  assert.ok(greeter.depends.includes('libgreet'), greeter.depends.join(', '));
  assert.ok(!greeter.depends.some((d) => d.startsWith('libgreet >=')), greeter.depends.join(', '));
  const exported = JSON.parse(
    spawnSync(
      'bash',
      [
        '-c',
        `unzip -p '${join(run.channel, 'linux-aarch64', libFile)}' 'info-*' | zstd -dc | tar -xO info/run_exports.json`,
      ],
      {
        encoding: 'utf8',
      },
    ).stdout,
  );
  assert.deepEqual(exported, { weak: ['libgreet >=1.2.0,<1.3.0a0'] });

  const files = (f: string) =>
    spawnSync('bash', ['-c', `unzip -p '${join(run.channel, 'linux-aarch64', f)}' 'pkg-*' | zstd -dc | tar -t`], {
      encoding: 'utf8',
    })
      .stdout.trim()
      .split('\n')
      .sort();
  assert.deepEqual(files(libFile), ['lib/libgreet.so.1', 'share/greet/greet-data.tar.gz']);
  assert.deepEqual(files(develFile), ['include/greet.h', 'lib/libgreet.so']);
  assert.deepEqual(files(greeterFile), ['bin/greeter']);
  // The second source was kept as downloaded, byte for byte, not unpacked.
  const data = spawnSync(
    'bash',
    [
      '-c',
      `unzip -p '${join(run.channel, 'linux-aarch64', libFile)}' 'pkg-*' | zstd -dc | tar -xO share/greet/greet-data.tar.gz | sha256sum`,
    ],
    { encoding: 'utf8' },
  ).stdout.split(' ')[0];
  assert.equal(data, DATA_SHA);
});

test('a v1 test that fails fails the build, naming the command; nothing is published', async (t) => {
  const dir = tempDir(t, 'accel-conda-v1-');
  const set = join(dir, 'set');
  write(join(set, 'greet-feedstock', 'recipe'), {
    'recipe.yaml': GREET.replace("grep -x 'Hello, aarch64!'", "grep -x 'Hello, x86!'"),
    'hello.c': HELLO_C,
  });
  const upstream = await startUpstream(t);
  const run = { home: join(dir, 'home'), channel: join(dir, 'channel'), upstream };
  const r = await condaBuild(run, ['--all', set]);
  failed(r, 'ACCEL_CONDA_TEST_FAILED');
  // The pipeline `./hello | grep -x …` failed; bash traces its commands in either order.
  assert.match(
    r.stderr.toString(),
    /libgreet-devel-1\.2\.0-\w+: tests failed \(exit 1\), at `(\.\/hello|grep -x 'Hello, x86!')`/,
  );
  assert.match(r.stderr.toString(), /\+ grep -x 'Hello, x86!'/);
  const repodata = join(run.channel, 'linux-aarch64', 'repodata.json');
  const names = existsSync(repodata)
    ? Object.values(JSON.parse(readFileSync(repodata, 'utf8'))['packages.conda']).map(
        (p) => (p as { name: string }).name,
      )
    : [];
  assert.deepEqual(
    names.filter((n) => n.startsWith('libgreet')),
    [],
  );
});

test('--source NAME=FILE replaces a feedstock’s first source only; its second is still fetched by its own digest', async (t) => {
  const dir = tempDir(t, 'accel-conda-v1-');
  const set = join(dir, 'set');
  write(join(set, 'greet-feedstock', 'recipe'), { 'recipe.yaml': GREET, 'hello.c': HELLO_C });
  // A repack of the same release: another tarball of the same tree.
  const repack = join(dir, 'greet-1.2.0-repack.tar.gz');
  const r0 = spawnSync('tar', ['-czf', repack, '-C', UPSTREAM, 'greet-1.2.0'], { encoding: 'utf8' });
  assert.equal(r0.status, 0, r0.stderr);
  const upstream = await startUpstream(t);
  const run = { home: join(dir, 'home'), channel: join(dir, 'channel'), upstream };
  const r = await condaBuild(run, ['--all', set, '--source', `greet=${repack}`]);
  const out = okJson(r);
  assert.deepEqual(statuses(out), { greet: 'built' });
  const warned = r.stderr
    .toString()
    .split('\n')
    .filter((l) => l.includes('replaced by'));
  assert.equal(warned.length, 1, warned.join('\n'));
  assert.match(
    warned[0] ?? '',
    /source http:\/\/127\.0\.0\.1:\d+\/accel-examples\/greet-1\.2\.0\.tar\.gz replaced by /,
  );
  assert.ok(upstream.requests.includes('/accel-examples/greet-data-2024.1.tar.gz'), upstream.requests.join(' '));
  assert.ok(!upstream.requests.includes('/accel-examples/greet-1.2.0.tar.gz'), upstream.requests.join(' '));
});
