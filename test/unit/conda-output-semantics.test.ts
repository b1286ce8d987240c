import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { type HostExports, runDepends } from '../../src/conda/builder/run-depends.ts';
import { loadRecipe } from '../../src/conda/recipe.ts';
import type { OutputRecord } from '../../src/conda/record.ts';
import { renderRecipe } from '../../src/conda/render.ts';
import { SHARED_FEEDSTOCKS } from '../feedstock-set.ts';
import { tempDir } from '../helpers.ts';

// Each test names the rule of conda-build's source it checks (metadata.py, render.py, jinja_context.py).

function render(t: TestContext, file: 'meta.yaml' | 'recipe.yaml', text: string): OutputRecord[] {
  const dir = join(tempDir(t), 'demo-feedstock');
  mkdirSync(join(dir, 'recipe'), { recursive: true });
  writeFileSync(join(dir, 'recipe', file), text);
  writeFileSync(join(dir, 'recipe', 'build.sh'), 'make install\n');
  return renderDir(dir);
}

function renderDir(dir: string): OutputRecord[] {
  return renderRecipe(loadRecipe(dir), {
    targetPlatform: 'linux-aarch64',
    buildPlatform: 'linux-64',
    variantFiles: [],
    env: {},
  }).records;
}

function output(records: OutputRecord[], name: string): OutputRecord {
  const r = records.find((o) => o.name === name);
  assert.ok(r, `no output ${name} among ${records.map((o) => o.name).join(', ')}`);
  return r;
}

/** Run requirements as the builder computes them, with the toolchain's runtime at GCC 10's. */
function depends(record: OutputRecord, host: HostExports[] = []): string[] {
  return runDepends({ record, host, runtimeMajor: '10', glibc: null });
}

const SPLIT = `package:
  name: foo
  version: 1.2.3
build:
  number: 4
  ignore_run_exports_from:
    - {{ compiler('cxx') }}
requirements:
  build:
    - {{ compiler('c') }}
    - {{ compiler('cxx') }}
    - make
  host:
    - zlib
  run:
    - bar
outputs:
  - name: foo
    build:
      run_exports:
        - {{ pin_subpackage('foo', max_pin='x.x') }}
    requirements:
      run:
        - baz
  - name: foo-tools
    requirements:
      host:
        - {{ pin_subpackage('foo', exact=True) }}
      run:
        - {{ pin_subpackage('foo', exact=True) }}
  - name: foo-devel
    build:
      number: 4
    requirements:
      build:
        - {{ compiler('cxx') }}
`;

test('metadata.py combine_top_level_metadata_with_output: an output named like the package takes each requirements key it does not set from the top level', (t) => {
  const records = render(t, 'meta.yaml', SPLIT);
  const foo = output(records, 'foo');
  assert.deepEqual(foo.requirements.build, ['gcc_linux-aarch64', 'gxx_linux-aarch64', 'make']);
  assert.deepEqual(foo.requirements.host, ['zlib']);
  // Its own run wins over the top level's: the merge is per key.
  assert.deepEqual(foo.requirements.run, ['baz']);
  // build/ merges the same way: its own run_exports, the top level's ignore_run_exports_from.
  assert.deepEqual(foo.run_exports.weak, ['foo >=1.2.3,<1.3.0a0']);
  assert.deepEqual(foo.ignore_run_exports.from_package, ['gxx_linux-aarch64']);
  // Any other output's requirements are its own alone.
  assert.deepEqual(output(records, 'foo-tools').requirements.build, []);
});

test('metadata.py get_output_metadata: an output without a build section takes the top level’s but for run_exports, entry_points, script and noarch', (t) => {
  const records = render(t, 'meta.yaml', SPLIT);
  const tools = output(records, 'foo-tools');
  assert.deepEqual(tools.ignore_run_exports.from_package, ['gxx_linux-aarch64']);
  assert.deepEqual(tools.run_exports, { weak: [], strong: [] });
  // A build section of its own replaces the top level's whole.
  assert.deepEqual(output(records, 'foo-devel').ignore_run_exports.from_package, []);
});

test('lz4-c-feedstock for linux-aarch64: lz4-c is built with the top-level compilers and depends on libgcc and libstdcxx; lz4-c-static only on lz4-c', () => {
  const records = renderDir(join(SHARED_FEEDSTOCKS, 'lz4-c-feedstock'));
  const lz4 = output(records, 'lz4-c');
  assert.ok(lz4.requirements.build.includes('gcc_linux-aarch64'), lz4.requirements.build.join(' '));
  assert.ok(lz4.requirements.build.includes('gxx_linux-aarch64'), lz4.requirements.build.join(' '));
  assert.deepEqual(depends(lz4), ['libgcc >=10', 'libstdcxx >=10']);
  const staticLib = output(records, 'lz4-c-static');
  assert.deepEqual(depends(staticLib), [`lz4-c 1.10.0 ${lz4.build_string}`]);
});

test('render.py add_upstream_pins: the compilers’ strong run_exports (c: libgcc; cxx: libstdcxx and libgcc), host weak and strong ones, none for noarch', (t) => {
  const records = render(
    t,
    'meta.yaml',
    `package:
  name: demo
  version: 1.0
outputs:
  - name: demo-c
    requirements:
      build: [{{ compiler('c') }}]
      host: [zlib, openssl]
  - name: demo-cxx
    requirements:
      build: [{{ compiler('cxx') }}]
  - name: demo-data
    build:
      noarch: generic
    requirements:
      build: [{{ compiler('c') }}]
      host: [zlib]
`,
  );
  const host: HostExports[] = [
    { name: 'zlib', weak: ['libzlib >=1.3.1,<2.0a0'], strong: [] },
    { name: 'openssl', weak: [], strong: ['openssl >=3.3,<4.0a0'] },
    // In the host environment but not named by the output: its exports do not apply.
    { name: 'ca-certificates', weak: ['ca-certificates'], strong: [] },
  ];
  assert.deepEqual(depends(output(records, 'demo-c'), host), [
    'libgcc >=10',
    'libzlib >=1.3.1,<2.0a0',
    'openssl >=3.3,<4.0a0',
  ]);
  assert.deepEqual(depends(output(records, 'demo-cxx')), ['libgcc >=10', 'libstdcxx >=10']);
  assert.deepEqual(depends(output(records, 'demo-data'), host), []);
});

test('jinja_context.py pin_subpackage(name, min_pin, max_pin, exact): exact is `name version build_string`; positions and None as conda-build reads them', (t) => {
  const records = render(
    t,
    'meta.yaml',
    `package:
  name: pins
  version: 1.2.3
build:
  number: 5
outputs:
  - name: libpin
  - name: pins-exact
    requirements:
      run:
        - {{ pin_subpackage('libpin', exact=True) }}
        - {{ pin_subpackage('libpin', 'x', 'x.x', True) }}
  - name: pins-range
    requirements:
      run:
        - {{ pin_subpackage('libpin', 'x', 'x.x') }}
  - name: pins-floor
    requirements:
      run:
        - {{ pin_subpackage('libpin', max_pin=None) }}
  - name: pins-default
    requirements:
      run:
        - {{ pin_subpackage('libpin') }}
`,
  );
  const lib = output(records, 'libpin');
  assert.match(lib.build_string, /^h[0-9a-f]{7}_5$/);
  const exact = `libpin 1.2.3 ${lib.build_string}`;
  assert.deepEqual(output(records, 'pins-exact').requirements.run, [exact, exact]);
  assert.deepEqual(output(records, 'pins-range').requirements.run, ['libpin >=1,<1.3.0a0']);
  assert.deepEqual(output(records, 'pins-floor').requirements.run, ['libpin >=1.2.3']);
  assert.deepEqual(output(records, 'pins-default').requirements.run, ['libpin >=1.2.3,<2.0a0']);
});

test('render.py get_upstream_pins: ignore_run_exports_from passes over a package’s exports (compilers too), ignore_run_exports drops exports by name or `*`', (t) => {
  const records = render(t, 'meta.yaml', SPLIT);
  // foo inherits ignore_run_exports_from: [compiler('cxx')]: the C compiler's libgcc stays, libstdcxx goes.
  assert.deepEqual(depends(output(records, 'foo')), ['baz', 'libgcc >=10']);
  const byName = render(
    t,
    'meta.yaml',
    `package:
  name: demo
  version: 1.0
build:
  ignore_run_exports:
    - libstdcxx
    - libzlib
requirements:
  build: [{{ compiler('cxx') }}]
  host: [zlib, openssl]
`,
  );
  const host: HostExports[] = [
    { name: 'zlib', weak: ['libzlib >=1.3.1,<2.0a0'], strong: [] },
    { name: 'openssl', weak: [], strong: ['openssl >=3.3,<4.0a0'] },
  ];
  assert.deepEqual(depends(output(byName, 'demo'), host), ['libgcc >=10', 'openssl >=3.3,<4.0a0']);
  const all = render(
    t,
    'meta.yaml',
    `package:
  name: demo
  version: 1.0
build:
  ignore_run_exports: ['*']
requirements:
  build: [{{ compiler('cxx') }}]
  host: [zlib]
  run: [zlib]
`,
  );
  // An own run requirement is not an export: `*` leaves it, bare as written.
  assert.deepEqual(depends(output(all, 'demo'), host), ['zlib']);
});

test('v1 recipe: ignore_run_exports from_package and by_name drop the compilers’ and host packages’ exports the same way', (t) => {
  const [r] = render(
    t,
    'recipe.yaml',
    `package:
  name: demo
  version: 1.0.0
build:
  number: 0
requirements:
  build:
    - \${{ compiler('c') }}
    - \${{ compiler('cxx') }}
  host: [zlib, openssl]
  ignore_run_exports:
    from_package:
      - \${{ compiler('cxx') }}
      - openssl
    by_name: [libzlib]
`,
  );
  assert.ok(r);
  const host: HostExports[] = [
    { name: 'zlib', weak: ['libzlib >=1.3.1,<2.0a0', 'zlib-data'], strong: [] },
    { name: 'openssl', weak: [], strong: ['openssl >=3.3,<4.0a0'] },
  ];
  assert.deepEqual(depends(r, host), ['libgcc >=10', 'zlib-data']);
});

test('metadata.py get_output_dicts_from_metadata: top-level run naming an output and no output named like the package add one, with the top-level requirements', (t) => {
  const records = render(
    t,
    'meta.yaml',
    `package:
  name: zed-split
  version: 2.0
requirements:
  build: [{{ compiler('c') }}]
  run:
    - libzed
outputs:
  - name: libzed
    requirements:
      build: [{{ compiler('c') }}]
`,
  );
  assert.deepEqual(
    records.map((o) => o.name),
    ['libzed', 'zed-split'],
  );
  const meta = output(records, 'zed-split');
  assert.deepEqual(meta.requirements.run, ['libzed']);
  assert.deepEqual(meta.requirements.build, ['gcc_linux-aarch64']);
  // Without a mention of an output, none is added.
  const plain = render(
    t,
    'meta.yaml',
    `package:
  name: zed-split
  version: 2.0
outputs:
  - name: libzed
`,
  );
  assert.deepEqual(
    plain.map((o) => o.name),
    ['libzed'],
  );
});
