import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { loadRecipe } from '../../src/conda/recipe.ts';
import { renderRecipe } from '../../src/conda/render.ts';
import { type RenderOptions, variantHash } from '../../src/conda/render-variants.ts';
import { isAccelError } from '../../src/core/errors.ts';
import { tempDir } from '../helpers.ts';

function recipeDir(t: TestContext, files: Record<string, string>, name = 'zlib-feedstock'): string {
  const dir = join(tempDir(t), name);
  mkdirSync(join(dir, 'recipe'), { recursive: true });
  for (const [file, text] of Object.entries(files)) writeFileSync(join(dir, 'recipe', file), text);
  return dir;
}

function options(target = 'linux-aarch64', variantFiles: string[] = []): RenderOptions {
  return { targetPlatform: target, buildPlatform: 'linux-64', variantFiles, env: { SRC_MIRROR: 'https://m.invalid' } };
}

// The shape of conda-forge's zlib feedstock: a split recipe whose library output exports a pin and whose
// second output pins the library exactly, selectors on requirement and patch lines, a for loop in tests.
const ZLIB = `{% set version = "1.3.1" %}
{% set libs = ["libz.so", "libz.so.1"] %}

package:
  name: zlib-split
  version: {{ version }}

source:
  url: {{ environ.get("SRC_MIRROR", "https://upstream.invalid") }}/zlib-{{ version }}.tar.gz
  sha256: 9a93b2b7dfdac77ceba5a558a580e74667dd6fede4585b91eefb60f03b72df23
  patches:
    - 0001-cross.patch  # [build_platform != target_platform]
    - 0002-windows.patch  # [win]

build:
  number: 2

requirements:
  build:
    - {{ compiler('c') }}
    - {{ stdlib('c') }}
    - cmake  # [win]
    - make   # [unix]

outputs:
  - name: libzlib
    script: install_lib.sh
    build:
      run_exports:
        - {{ pin_subpackage('libzlib', max_pin='x') }}
    requirements:
      build:
        - {{ compiler('c') }}
        - {{ stdlib('c') }}
      run_constrained:
        - zlib {{ version }} *_2
    test:
      commands:
        {% for lib in libs %}
        - test -f $PREFIX/lib/{{ lib }}  # [unix]
        {% endfor %}
        - if not exist %LIBRARY_BIN%\\zlib.dll exit 1  # [win]

  - name: zlib
    build:
      script: cp -r include $PREFIX/
    requirements:
      host:
        - {{ pin_subpackage('libzlib', exact=True) }}
      run:
        - {{ pin_subpackage('libzlib', exact=True) }}
    test:
      requires:
        - pkg-config
      commands:
        - pkg-config --exists zlib
`;

const ZLIB_CBC = `c_compiler:
  - gcc      # [linux]
c_compiler_version:
  - 13       # [linux]
c_stdlib:
  - sysroot  # [linux]
c_stdlib_version:
  - 2.17     # [linux]
openssl:
  - 3
`;

test('a conda-forge split recipe renders: pins, run_exports, selectors on requirements, a for loop in tests', (t) => {
  const dir = recipeDir(t, {
    'meta.yaml': ZLIB,
    'conda_build_config.yaml': ZLIB_CBC,
    'install_lib.sh': 'make install\n',
    'build.sh': 'make\n',
  });
  const { records, buildRequires, machineRequires } = renderRecipe(loadRecipe(dir), options());
  assert.deepEqual(
    records.map((r) => r.name),
    ['libzlib', 'zlib'],
  );
  const [lib, dev] = records as [(typeof records)[0], (typeof records)[0]];
  const hash = variantHash({
    c_compiler: 'gcc',
    c_compiler_version: '13',
    c_stdlib: 'sysroot',
    c_stdlib_version: '2.17',
    target_platform: 'linux-aarch64',
  });
  assert.match(hash, /^h[0-9a-f]{7}$/);
  assert.equal(lib.build_string, `${hash}_2`);
  assert.equal(lib.build_number, 2);
  assert.equal(lib.version, '1.3.1');
  assert.equal(lib.subdir, 'linux-aarch64');
  assert.deepEqual(lib.variant, {
    c_compiler: 'gcc',
    c_compiler_version: '13',
    c_stdlib: 'sysroot',
    c_stdlib_version: '2.17',
  });
  assert.deepEqual(lib.requirements.build, ['gcc_linux-aarch64 13', 'sysroot_linux-aarch64 2.17']);
  assert.deepEqual(lib.requirements.run_constrained, ['zlib 1.3.1 *_2']);
  assert.deepEqual(lib.run_exports, { weak: ['libzlib >=1.3.1,<2.0a0'], strong: [] });
  assert.deepEqual(lib.test.commands, ['test -f $PREFIX/lib/libz.so', 'test -f $PREFIX/lib/libz.so.1']);
  assert.deepEqual(lib.script, { file: 'install_lib.sh', text: 'make install\n', shared: false });
  assert.deepEqual(dev.requirements.host, [`libzlib 1.3.1 ${hash}_2`]);
  assert.deepEqual(dev.requirements.run, [`libzlib 1.3.1 ${hash}_2`]);
  assert.deepEqual(dev.test, {
    commands: ['pkg-config --exists zlib'],
    requires: ['pkg-config'],
    imports: [],
    files: [],
    source_files: [],
  });
  assert.deepEqual(dev.script, { file: null, text: 'cp -r include $PREFIX/', shared: false });
  assert.deepEqual(lib.sources, [
    {
      url: 'https://m.invalid/zlib-1.3.1.tar.gz',
      sha256: '9a93b2b7dfdac77ceba5a558a580e74667dd6fede4585b91eefb60f03b72df23',
      md5: null,
      sha1: null,
      patches: ['0001-cross.patch'],
      folder: null,
      git_url: null,
      git_rev: null,
      path: null,
      file_name: null,
    },
  ]);
  // The recipe's own build needs make on unix and cmake only on Windows: tools and compilers come from the
  // build machine, so only the host's libzlib is a package of the set.
  assert.deepEqual(buildRequires, ['libzlib']);
  assert.deepEqual(machineRequires, ['gcc_linux-aarch64', 'make', 'sysroot_linux-aarch64']);

  const win = renderRecipe(loadRecipe(dir), options('win-64'));
  assert.deepEqual(win.records[0]?.sources[0]?.patches, ['0001-cross.patch', '0002-windows.patch']);
  assert.deepEqual(win.records[0]?.requirements.build, ['vs2019_win-64', 'vs_win-64']);
  assert.deepEqual(win.records[0]?.test.commands, ['if not exist %LIBRARY_BIN%\\zlib.dll exit 1']);
  assert.ok(win.machineRequires.includes('cmake') && !win.machineRequires.includes('make'));

  const native = renderRecipe(loadRecipe(dir), options('linux-64'));
  assert.deepEqual(native.records[0]?.sources[0]?.patches, []);
  assert.notEqual(native.records[0]?.build_string, lib.build_string, 'the hash covers target_platform');
});

test('variants: zip_keys move together, unused keys do not multiply, numbers stay strings', (t) => {
  const dir = recipeDir(t, {
    'meta.yaml': `package:
  name: pyfoo
  version: "2.0"
requirements:
  build:
    - {{ compiler('c') }}
  host:
    - python
    - numpy
    - zlib
  run:
    - python
test:
  commands:
    - echo {{ python }}  # [py>=311]
`,
    'conda_build_config.yaml': `python:
  - 3.10
  - 3.11
  - 3.12
numpy:
  - 1.22
  - 1.23
  - 1.26
zip_keys:
  - - python
    - numpy
c_compiler_version:
  - 11
openssl:
  - 1.1.1
  - 3
`,
  });
  const pinning = join(tempDir(t), 'pinning.yaml');
  writeFileSync(pinning, 'c_compiler_version:\n  - 12\n  - 13\nzlib:\n  - 1.3\n');
  const { records } = renderRecipe(loadRecipe(dir), options('linux-aarch64', [pinning]));
  assert.equal(records.length, 6, '3 zipped python/numpy pairs x 2 compilers; openssl is unused');
  const pairs = records.map((r) => `${r.variant.python}/${r.variant.numpy}/${r.variant.c_compiler_version}`);
  assert.deepEqual(pairs.sort(), [
    '3.10/1.22/12',
    '3.10/1.22/13',
    '3.11/1.23/12',
    '3.11/1.23/13',
    '3.12/1.26/12',
    '3.12/1.26/13',
  ]);
  assert.equal(new Set(records.map((r) => r.build_string)).size, 6);
  for (const r of records) {
    assert.equal(r.variant.zlib, '1.3', 'a key only the given file sets applies too');
    assert.equal(r.variant.openssl, undefined);
    assert.match(r.build_string, new RegExp(`^py${(r.variant.python as string).replace('.', '')}h[0-9a-f]{7}_0$`));
    assert.deepEqual(r.requirements.host, [`python ${r.variant.python}`, `numpy ${r.variant.numpy}`, 'zlib 1.3']);
    assert.deepEqual(r.test.commands, r.variant.python === '3.10' ? [] : [`echo ${r.variant.python}`]);
  }
});

test('zip_keys as one flat list, and files as {include, exclude}', (t) => {
  const dir = recipeDir(t, {
    'meta.yaml': `package:
  name: p-split
  version: 1
requirements:
  host:
    - python
    - numpy
outputs:
  - name: p
    files:
      include:
        - lib/**
      exclude:
        - lib/*.a
`,
    'conda_build_config.yaml':
      'python:\n  - 3.11\n  - 3.12\nnumpy:\n  - 1.26\n  - 2\nzip_keys:\n  - python\n  - numpy\n',
  });
  const records = renderRecipe(loadRecipe(dir), options()).records;
  assert.deepEqual(
    records.map((r) => `${r.variant.python}/${r.variant.numpy}`),
    ['3.11/1.26', '3.12/2'],
  );
  assert.deepEqual(records[0]?.files, ['lib/**']);
  assert.match(records[0]?.build_string ?? '', /^h[0-9a-f]{7}_0$/, 'no py prefix: the output itself has no python');
  assert.notEqual(records[0]?.build_string, records[1]?.build_string, 'the hash still covers python');
  assert.deepEqual(records[0]?.files_exclude, ['lib/*.a']);
});

test('noarch: generic is one record for any platform, with the same build string', (t) => {
  const dir = recipeDir(t, {
    'meta.yaml': 'package:\n  name: data\n  version: 1\nbuild:\n  noarch: generic\n  number: 3\n',
  });
  const a = renderRecipe(loadRecipe(dir), options('linux-aarch64')).records;
  const b = renderRecipe(loadRecipe(dir), options('osx-64')).records;
  assert.equal(a.length, 1);
  assert.equal(a[0]?.subdir, 'noarch');
  assert.equal(a[0]?.build_string, b[0]?.build_string);
  assert.match(a[0]?.build_string ?? '', /^h[0-9a-f]{7}_3$/);
});

test('a noarch python recipe: {{ PYTHON }} stays a build-time variable, PKG_VERSION is the package version', (t) => {
  const dir = recipeDir(t, {
    'meta.yaml': `{% set name = "TinyPy" %}
package:
  name: {{ name | lower }}
  version: "0.10"
build:
  number: 1
  noarch: python
  script: {{ PYTHON }} -m pip install . -vv --no-deps
requirements:
  host:
    - python
    - pip
  run:
    - python >=3.8
test:
  commands:
    - test "$(tinypy --version)" = "{{ PKG_NAME }} {{ PKG_VERSION }} {{ PKG_BUILDNUM }}"
    - cp -r {{ RECIPE_DIR }}/tests .
    - echo {{ PY_VER }} {{ CONDA_PY }}
`,
    'conda_build_config.yaml': 'python:\n  - 3.10\n  - 3.11\n',
  });
  const records = renderRecipe(loadRecipe(dir), options()).records;
  assert.equal(records.length, 1, 'two python variants make the same noarch package: built once');
  const [r] = records;
  assert.deepEqual(r?.requirements.host, ['python 3.10', 'pip']);
  assert.equal(r?.version, '0.10');
  assert.equal(r?.subdir, 'noarch');
  assert.match(r?.build_string ?? '', /^pyh[0-9a-f]{7}_1$/);
  assert.deepEqual(r?.script, { file: null, text: '$PYTHON -m pip install . -vv --no-deps', shared: false });
  assert.deepEqual(r?.test.commands, [
    'test "$(tinypy --version)" = "tinypy 0.10 1"',
    `cp -r ${join(dir, 'recipe')}/tests .`,
    'echo 3.10 310',
  ]);
});

test('a build string made from PKG_HASH is final before pin_subpackage(exact=True) uses it', (t) => {
  const dir = recipeDir(t, {
    'meta.yaml': `{% set build = 100 %}
package:
  name: h5-split
  version: 2.1.0
build:
  number: {{ build }}
outputs:
  - name: h5
    build:
      string: nompi_h{{ PKG_HASH }}_{{ build }}
  - name: h5-tools
    requirements:
      run:
        - {{ pin_subpackage('h5', exact=True) }}
`,
  });
  const [h5, tools] = renderRecipe(loadRecipe(dir), options()).records;
  const hash = variantHash({ target_platform: 'linux-aarch64' });
  assert.equal(h5?.build_string, `nompi_${hash}_100`);
  assert.deepEqual(tools?.requirements.run, [`h5 2.1.0 nompi_${hash}_100`]);
});

test('build: skip: true # [win] renders nothing for Windows', (t) => {
  const dir = recipeDir(t, { 'meta.yaml': 'package:\n  name: x\n  version: 1\nbuild:\n  skip: true  # [win]\n' });
  assert.equal(renderRecipe(loadRecipe(dir), options('win-64')).records.length, 0);
  assert.equal(renderRecipe(loadRecipe(dir), options('linux-aarch64')).records.length, 1);
});

// Bad recipes: each names meta.yaml (or the variant file) and the source line, through Jinja's expansion.
const BAD: [string, Record<string, string>, string, string][] = [
  [
    'invalid YAML after a for loop expanded lines',
    {
      'meta.yaml':
        'package:\n  name: x\n  version: 1\ntest:\n  commands:\n{% for i in [1, 2, 3] %}\n    - echo {{ i }}\n{% endfor %}\nabout: home: x\n',
    },
    'ACCEL_CONDA_YAML',
    'meta.yaml:9:',
  ],
  ['a tab-broken mapping', { 'meta.yaml': 'package:\n  name: x\n version: 1\n' }, 'ACCEL_CONDA_YAML', 'meta.yaml:3:'],
  [
    'an undefined variable',
    { 'meta.yaml': 'package:\n  name: x\n  version: {{ versoin }}\n' },
    'ACCEL_CONDA_UNDEFINED',
    'meta.yaml:3:',
  ],
  [
    'an unsupported construct',
    { 'meta.yaml': '{% set d = load_file_regex(load_file="x") %}\npackage:\n  name: x\n' },
    'ACCEL_CONDA_UNSUPPORTED',
    'meta.yaml:1:',
  ],
  ['no package name', { 'meta.yaml': '\npackage:\n  version: 1\n' }, 'ACCEL_CONDA_RECIPE', 'meta.yaml:2:'],
  [
    'a build number that is no number',
    { 'meta.yaml': 'package:\n  name: x\n  version: 1\nbuild:\n  number: one\n' },
    'ACCEL_CONDA_RECIPE',
    'meta.yaml:5:',
  ],
  [
    'zipped keys of different lengths',
    {
      'meta.yaml': 'package:\n  name: x\n  version: 1\nrequirements:\n  host:\n    - python\n',
      'conda_build_config.yaml': 'python:\n  - 3.11\n  - 3.12\nnumpy:\n  - 2\nzip_keys:\n  - [python, numpy]\n',
    },
    'ACCEL_CONDA_VARIANT',
    'conda_build_config.yaml:1:',
  ],
  [
    'invalid YAML in conda_build_config.yaml',
    { 'meta.yaml': 'package:\n  name: x\n', 'conda_build_config.yaml': 'a:\n  - 1\n b: 2\n' },
    'ACCEL_CONDA_YAML',
    'conda_build_config.yaml:3:',
  ],
];

for (const [what, files, code, where] of BAD) {
  test(`bad recipe: ${what} → ${code} at ${where}`, (t) => {
    const dir = recipeDir(t, files);
    assert.throws(
      () => renderRecipe(loadRecipe(dir), options()),
      (err: unknown) => {
        assert.ok(isAccelError(err), String(err));
        assert.equal(err.code, code, err.message);
        assert.ok(err.message.includes(`/recipe/${where}`), err.message);
        assert.equal(err.exitCode, 1);
        return true;
      },
    );
  });
}

test('real recipes’ render needs: SHLIB_EXT in Jinja, "" variant values kept, a skipped output still pinnable, md5/sha1 pins read', (t) => {
  const dir = recipeDir(t, {
    'meta.yaml': `package:
  name: blas-split
  version: 1.0
source:
  url: https://upstream.invalid/blas-1.0.tar.gz
  md5: 0123456789abcdef0123456789abcdef
  sha1: 0123456789abcdef0123456789abcdef01234567
outputs:
  - name: libblas{{ suffix }}
    test:
      commands:
        - test -f $PREFIX/lib/libblas{{ SHLIB_EXT }}
      source_files: [tests]
  - name: blas-wapi
    build:
      skip: true  # [not win]
      run_exports:
        - {{ pin_subpackage('blas-wapi', max_pin='x') }}
`,
    // openblas' shape: an explicit "" is a value (no suffix), beside a real one.
    'conda_build_config.yaml': 'suffix:\n  - ""\n  - "-ilp64"\n',
  });
  const records = renderRecipe(loadRecipe(dir), options()).records;
  assert.deepEqual(records.map((r) => r.name).sort(), ['libblas', 'libblas-ilp64']);
  assert.deepEqual(records[0]?.test.commands, ['test -f $PREFIX/lib/libblas.so']);
  assert.deepEqual(records[0]?.test.source_files, ['tests']);
  assert.equal(records[0]?.sources[0]?.md5, '0123456789abcdef0123456789abcdef');
  assert.equal(records[0]?.sources[0]?.sha1, '0123456789abcdef0123456789abcdef01234567');
  const osx = renderRecipe(loadRecipe(dir), options('osx-arm64')).records;
  assert.deepEqual(osx[0]?.test.commands, ['test -f $PREFIX/lib/libblas.dylib']);
});

test('zipped keys of different lengths: the error names each key, its count and the file that set it', (t) => {
  const dir = recipeDir(t, {
    'meta.yaml': 'package:\n  name: x\n  version: 1\nrequirements:\n  host:\n    - python\n    - numpy\n',
    'conda_build_config.yaml': 'python: ["3.11", "3.12"]\nnumpy: ["1.26", "2.0"]\nzip_keys: [[python, numpy]]\n',
  });
  const override = join(dir, 'override.yaml');
  writeFileSync(override, 'python: ["3.10", "3.11", "3.12"]\n');
  assert.throws(
    () => renderRecipe(loadRecipe(dir), options('linux-aarch64', [override])),
    (err: unknown) => {
      assert.ok(isAccelError(err));
      assert.equal(err.code, 'ACCEL_CONDA_VARIANT');
      assert.match(err.message, /python: 3 in .*override\.yaml/);
      assert.match(err.message, /numpy: 2 in .*conda_build_config\.yaml/);
      return true;
    },
  );
});
