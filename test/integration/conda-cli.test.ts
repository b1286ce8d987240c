import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { linkFeedstocks, SHARED_FEEDSTOCKS } from '../feedstock-set.ts';
import { failed, ok, ROOT, runAccel, tempDir } from '../helpers.ts';
import { startUpstream } from './conda-build-harness.ts';

const FEEDSTOCKS = join(ROOT, 'examples', 'feedstocks');

/** The example sources' upstream: the harness's local server with the tarballs. */
async function upstream(t: TestContext): Promise<string> {
  return (await startUpstream(t)).base;
}

function feedstock(root: string, name: string, meta: string): void {
  mkdirSync(join(root, `${name}-feedstock`, 'recipe'), { recursive: true });
  writeFileSync(join(root, `${name}-feedstock`, 'recipe', 'meta.yaml'), meta);
}

test('render: each example renders for linux-aarch64, and its source URL serves the tarball its sha256 names', async (t) => {
  const base = await upstream(t);
  const env = { EXAMPLES_UPSTREAM: base };
  const names: string[] = [];
  for (const dir of ['libgreet', 'libshout', 'hello', 'greet-data']) {
    const args = [
      '--json',
      'conda',
      'render',
      join(FEEDSTOCKS, `${dir}-feedstock`),
      '--target-platform',
      'linux-aarch64',
    ];
    const records = JSON.parse(ok(await runAccel(args, { env })));
    for (const r of records) {
      names.push(`${r.name} ${r.subdir}`);
      assert.equal(r.sources.length, 1);
      const { url, sha256 } = r.sources[0];
      assert.ok(url.startsWith(`${base}/`), url);
      const res = await fetch(url);
      assert.equal(res.status, 200, url);
      assert.equal(
        createHash('sha256')
          .update(Buffer.from(await res.arrayBuffer()))
          .digest('hex'),
        sha256,
        url,
      );
      assert.ok(r.script?.text.includes('PREFIX'), `${r.name} has a conda-forge style build script`);
    }
  }
  assert.deepEqual(names, [
    'libgreet linux-aarch64',
    'libgreet-devel linux-aarch64',
    'libshout linux-aarch64',
    'hello linux-aarch64',
    'greet-data noarch',
  ]);
});

test('render: the split library example has the cross compiler, pins and run_exports; text output is readable', async () => {
  const dir = join(FEEDSTOCKS, 'libgreet-feedstock');
  const [lib, devel] = JSON.parse(
    ok(await runAccel(['--json', 'conda', 'render', dir, '--target-platform', 'linux-aarch64'])),
  );
  assert.deepEqual(lib.requirements.build, ['gcc_linux-aarch64 12', 'sysroot_linux-aarch64 2.17']);
  assert.deepEqual(lib.run_exports.weak, ['libgreet >=1.2.0,<1.3.0a0']);
  assert.deepEqual(lib.test.commands, ['test -f $PREFIX/lib/libgreet.so.1']);
  assert.deepEqual(devel.requirements.run, [`libgreet 1.2.0 ${lib.build_string}`]);
  assert.deepEqual(devel.files, ['include/greet.h', 'lib/libgreet.so']);
  assert.equal(devel.script.shared, true);
  assert.deepEqual(devel.top_level.name, 'libgreet-split');
  assert.deepEqual(devel.top_level.requirements, {
    build: ['gcc_linux-aarch64 12', 'sysroot_linux-aarch64 2.17', 'make'],
    host: [],
  });
  assert.equal(devel.top_level.script.file, 'build.sh', 'the recipe’s own script, run once before the outputs');
  assert.match(lib.build_string, /^h[0-9a-f]{7}_0$/);
  assert.equal(lib.recipe_dir, join(dir, 'recipe'));
  assert.deepEqual(devel.about, {
    home: 'https://upstream.invalid/accel-examples/greet',
    license: 'MIT',
    summary: 'A tiny C library that formats greetings',
  });

  const native = JSON.parse(ok(await runAccel(['--json', 'conda', 'render', dir, '--target-platform', 'linux-64'])));
  assert.deepEqual(native[0].requirements.build, ['gcc_linux-64 12', 'sysroot_linux-64 2.17']);

  const text = ok(await runAccel(['conda', 'render', dir, '--target-platform', 'linux-aarch64']));
  assert.match(
    text,
    new RegExp(`^libgreet-1\\.2\\.0-${lib.build_string} +\\(linux-aarch64, feedstock libgreet\\)$`, 'm'),
  );
  assert.match(text, /^ {2}run_exports: libgreet >=1\.2\.0,<1\.3\.0a0$/m);
  assert.equal(ok(await runAccel(['conda', 'render', dir, '--target-platform', 'win-64'])), '', 'skipped on win');
});

test('render: --variant-config wins over the recipe’s own conda_build_config.yaml, key by key', async (t) => {
  const pinning = join(tempDir(t), 'pinning.yaml');
  writeFileSync(pinning, 'c_compiler_version:\n  - 14\nlibshout:\n  - 0.2\n  - 0.3\nzlib:\n  - 1.3\n');
  const records = JSON.parse(
    ok(
      await runAccel([
        '--json',
        'conda',
        'render',
        join(FEEDSTOCKS, 'hello-feedstock'),
        '--target-platform',
        'linux-aarch64',
        '--variant-config',
        pinning,
      ]),
    ),
  );
  assert.equal(records.length, 2, 'two libshout versions; zlib is unused');
  for (const [i, shout] of ['0.2', '0.3'].entries()) {
    assert.deepEqual(records[i].requirements.build, ['gcc_linux-aarch64 14', 'sysroot_linux-aarch64 2.17', 'make']);
    assert.deepEqual(records[i].requirements.host, ['libgreet 1.2', 'libgreet-devel', `libshout ${shout}`]);
  }
  assert.notEqual(records[0].build_string, records[1].build_string);
});

test('render: one render per .ci_support file of the target platform, merged (--no-ci-support: the recipe alone)', async (t) => {
  const root = tempDir(t);
  feedstock(root, 'pyx', 'package:\n  name: pyx\n  version: 1\nrequirements:\n  host:\n    - python\n');
  const ci = join(root, 'pyx-feedstock', '.ci_support');
  mkdirSync(ci);
  writeFileSync(join(ci, 'linux_aarch64_python3.11.____cpython.yaml'), 'python:\n- 3.11.* *_cpython\n');
  writeFileSync(join(ci, 'linux_aarch64_python3.12.____cpython.yaml'), 'python:\n- 3.12.* *_cpython\n');
  writeFileSync(join(ci, 'linux_64_python3.10.____cpython.yaml'), 'python:\n- 3.10.* *_cpython\n');
  const dir = join(root, 'pyx-feedstock');
  const args = ['--json', 'conda', 'render', dir, '--target-platform', 'linux-aarch64'];
  const records = JSON.parse(ok(await runAccel([...args, '--ci-support'])));
  assert.deepEqual(
    records.map((r: { requirements: { host: string[] } }) => r.requirements.host[0]),
    ['python 3.11.* *_cpython', 'python 3.12.* *_cpython'],
  );
  assert.match(records[0].build_string, /^py311h[0-9a-f]{7}_0$/);
  assert.equal(JSON.parse(ok(await runAccel(args))).length, 2, '.ci_support is used by default');
  assert.equal(JSON.parse(ok(await runAccel([...args, '--no-ci-support']))).length, 1, 'the recipe alone');
  const ppc = JSON.parse(ok(await runAccel([...args, '--ci-support', '--target-platform', 'linux-ppc64le'])));
  assert.deepEqual(
    ppc.map((r: { subdir: string; variant: { python: string } }) => `${r.subdir} ${r.variant.python}`),
    ['linux-ppc64le 3.10.* *_cpython'],
  );
  const plan = JSON.parse(ok(await runAccel(['--json', 'conda', 'plan', root, '--ci-support'])));
  assert.deepEqual(plan.external, [{ name: 'python', needed_by: ['pyx'] }]);
});

test('plan: the examples build in order, in three levels; compilers and make come from the machine', async () => {
  const args = ['conda', 'plan', FEEDSTOCKS, '--target-platform', 'linux-aarch64'];
  const plan = JSON.parse(ok(await runAccel(['--json', ...args])));
  assert.deepEqual(plan.order, ['greet-data', 'libgreet', 'libshout', 'hello']);
  assert.deepEqual(plan.levels, [['greet-data', 'libgreet'], ['libshout'], ['hello']]);
  assert.deepEqual(plan.cycles, []);
  assert.deepEqual(plan.external, []);
  assert.deepEqual(
    plan.machine.map((x: { name: string }) => x.name),
    ['gcc_linux-aarch64', 'make', 'sysroot_linux-aarch64'],
  );
  const text = ok(await runAccel(args));
  assert.match(text, /^from the build machine: gcc_linux-aarch64 make sysroot_linux-aarch64$/m);
  assert.match(text, /^ {2}level 1: greet-data libgreet$/m);
  assert.match(text, /^ {2}hello <- libshout \(libshout\)$/m);
  const dot = ok(await runAccel([...args, '--dot']));
  assert.match(dot, /^digraph feedstocks \{/);
  assert.match(dot, /"libgreet" -> "hello" \[label="libgreet,libgreet-devel"\];/);
  failed(await runAccel(['--json', ...args, '--dot']), 2, 'ACCEL_USAGE_CONFLICT');
});

test('plan: compilers come from the machine, so zlib and the compilers are no cycle; a missing host dependency is external', async (t) => {
  const root = tempDir(t);
  feedstock(
    root,
    'zlib',
    "package:\n  name: zlib\n  version: 1.3.1\nrequirements:\n  build:\n    - {{ compiler('c') }}\n    - cmake\n",
  );
  feedstock(
    root,
    'ctng-compilers',
    [
      'package:\n  name: ctng-compilers\n  version: 13.2.0\nrequirements:\n  host:\n    - zlib\n',
      'outputs:\n  - name: gcc_linux-aarch64\n  - name: libgcc\n',
    ].join(''),
  );
  feedstock(
    root,
    'libpng',
    'package:\n  name: libpng\n  version: 1.6.43\nrequirements:\n  host:\n    - zlib\n    - libfoo\n',
  );
  const r = await runAccel([
    '--json',
    'conda',
    'plan',
    join(root, 'zlib-feedstock'),
    join(root, 'ctng-compilers-feedstock'),
    join(root, 'libpng-feedstock'),
    '--target-platform',
    'linux-aarch64',
  ]);
  const plan = JSON.parse(ok(r));
  assert.deepEqual(plan.cycles, []);
  assert.deepEqual(plan.levels, [['zlib'], ['ctng-compilers', 'libpng']]);
  assert.deepEqual(plan.external, [{ name: 'libfoo', needed_by: ['libpng'] }]);
  assert.deepEqual(plan.machine, [
    { name: 'cmake', needed_by: ['zlib'] },
    { name: 'gcc_linux-aarch64', needed_by: ['zlib'] },
  ]);
  assert.doesNotMatch(r.stderr, /cycle/);
});

// Bad input: each is exit 1 with a stable code, the file and line, and a hint.
const BAD: [string, string, string, RegExp][] = [
  [
    'invalid YAML',
    'package:\n  name: x\n  version: 1\nabout: home: y\n',
    'ACCEL_CONDA_YAML',
    /meta\.yaml:4: invalid YAML/,
  ],
  [
    'an undefined Jinja variable',
    '{% set version = "1" %}\npackage:\n  name: x\n  version: {{ verison }}\n',
    'ACCEL_CONDA_UNDEFINED',
    /meta\.yaml:4: undefined Jinja variable 'verison'/,
  ],
  [
    'an unsupported construct',
    'package:\n  name: x\n{% macro m() %}{% endmacro %}\n',
    'ACCEL_CONDA_UNSUPPORTED',
    /meta\.yaml:3: unsupported Jinja statement/,
  ],
];

for (const [what, meta, code, message] of BAD) {
  test(`render and plan: ${what} → exit 1, ${code}, file:line`, async (t) => {
    const root = tempDir(t);
    feedstock(root, 'bad', meta);
    for (const args of [
      ['conda', 'render', join(root, 'bad-feedstock')],
      ['conda', 'plan', root],
    ]) {
      const r = await runAccel(args);
      failed(r, 1, code);
      assert.match(r.stderr, message);
      assert.ok(r.stderr.includes(join(root, 'bad-feedstock', 'recipe', 'meta.yaml')), r.stderr);
      assert.match(r.stderr, /^accel: hint: /m);
      assert.equal(r.stdout.length, 0);
    }
  });
}

test('v1 recipes (recipe.yaml) and meta.yaml ones plan in one graph: the real snappy, yaml and libedit feedstocks beside ncurses and lz4-c', async (t) => {
  const set = linkFeedstocks(join(tempDir(t), 'set'), ['snappy', 'yaml', 'libedit', 'ncurses', 'lz4-c']);
  const p = await runAccel(['--json', 'conda', 'plan', set, '--target-platform', 'linux-aarch64']);
  const plan = JSON.parse(ok(p));
  const order: string[] = plan.order;
  assert.deepEqual([...order].sort(), ['libedit', 'lz4-c', 'ncurses', 'snappy', 'yaml']);
  assert.ok(order.indexOf('ncurses') < order.indexOf('libedit'), order.join(' '));
  assert.ok(order.indexOf('lz4-c') < order.indexOf('snappy'), order.join(' '));
  // snappy's test libraries come from no feedstock here: external, with who needs them.
  const external = Object.fromEntries(
    plan.external.map((e: { name: string; needed_by: string[] }) => [e.name, e.needed_by]),
  );
  assert.deepEqual([external.gtest, external.gmock], [['snappy'], ['snappy']]);
  const r = await runAccel([
    '--json',
    'conda',
    'render',
    join(SHARED_FEEDSTOCKS, 'libedit-feedstock'),
    '--target-platform',
    'linux-aarch64',
  ]);
  const [libedit] = JSON.parse(ok(r));
  assert.equal(libedit.version, '3.1.20250104');
  assert.deepEqual(libedit.run_exports.weak, ['libedit >=3.1.20250104,<3.2.0a0']);
});

test('a bad recipe.yaml: render names file:line and the key; plan --keep-going lists it as failed and plans the rest', async (t) => {
  const root = tempDir(t);
  mkdirSync(join(root, 'v1-feedstock', 'recipe'), { recursive: true });
  const file = join(root, 'v1-feedstock', 'recipe', 'recipe.yaml');
  writeFileSync(file, 'package:\n  name: v1\n  version: "1"\nbuild:\n  numbr: 2\n');
  feedstock(root, 'ok', 'package:\n  name: ok\n  version: 1\nrequirements:\n  host:\n    - v1\n');
  const r = await runAccel(['conda', 'render', join(root, 'v1-feedstock')]);
  failed(r, 1, 'ACCEL_CONDA_UNSUPPORTED');
  assert.ok(r.stderr.includes(`${file}:5: unknown key build/numbr`), r.stderr);
  assert.match(r.stderr, /hint: known keys under build: number, string, skip/);
  const p = await runAccel(['--json', 'conda', 'plan', root, '--keep-going']);
  assert.equal(p.code, 1);
  const plan = JSON.parse(p.stdout.toString());
  assert.deepEqual(plan.order, ['ok']);
  assert.deepEqual(
    plan.failed.map((f: { feedstock: string; needed_by: string[] }) => [f.feedstock, f.needed_by]),
    [['v1', ['ok']]],
  );
});

test('render: a directory without a recipe is exit 1; an unknown platform is a usage error', async (t) => {
  const empty = tempDir(t);
  failed(await runAccel(['conda', 'render', empty]), 1, 'ACCEL_CONDA_NO_RECIPE');
  failed(await runAccel(['conda', 'plan', empty]), 1, 'ACCEL_CONDA_NO_RECIPE');
  const dir = join(FEEDSTOCKS, 'greet-data-feedstock');
  failed(await runAccel(['conda', 'render', dir, '--target-platform', 'linux-arm']), 2, 'ACCEL_USAGE_PLATFORM');
  failed(
    await runAccel(['conda', 'render', dir, '--variant-config', join(empty, 'nope.yaml')]),
    1,
    'ACCEL_FS_NOT_FOUND',
  );
});

test('conda plan over the real conda-forge feedstocks: the order the builder follows (one graph), no cycles', async (t) => {
  const shared = join(ROOT, '..', 'shared', 'feedstocks');
  const dirs = readdirSync(shared)
    .filter((d) => d.endsWith('-feedstock'))
    .map((d) => join(shared, d));
  const plan = JSON.parse(
    ok(
      await runAccel(['--home', tempDir(t), '--json', 'conda', 'plan', ...dirs, '--target-platform', 'linux-aarch64']),
    ),
  ) as { levels: string[][]; edges: { from: string; to: string }[]; cycles: string[][] };
  const level = (f: string) => plan.levels.findIndex((l) => l.includes(f));
  assert.deepEqual(plan.cycles, []);
  for (const [before, after] of [
    ['gmp', 'mpfr'],
    ['mpfr', 'mpc'],
    ['ncurses', 'readline'],
    ['openssl', 'libssh2'],
    ['zlib', 'libssh2'],
    ['gflags', 'glog'],
  ]) {
    assert.ok(
      level(before as string) < level(after as string),
      `${before} before ${after}: ${JSON.stringify(plan.levels)}`,
    );
  }
  for (const e of plan.edges) assert.ok(level(e.from) < level(e.to), `${e.from} -> ${e.to}`);
});
