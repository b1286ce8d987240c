// rattler-build recipes (recipe.yaml, the v1 format): each construct rendered from a small recipe of our own,
// and the errors a user gets for a bad or unsupported one, with file:line and the key's path.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { renderWithCiSupport } from '../../src/conda/ci-support.ts';
import { loadRecipe } from '../../src/conda/recipe.ts';
import type { OutputRecord } from '../../src/conda/record.ts';
import { renderRecipe } from '../../src/conda/render.ts';
import type { RenderOptions } from '../../src/conda/render-variants.ts';
import { isAccelError } from '../../src/core/errors.ts';
import { tempDir } from '../helpers.ts';

function feedstock(t: TestContext, files: Record<string, string>, name = 'demo-feedstock'): string {
  const dir = join(tempDir(t), name);
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(join(dir, file, '..'), { recursive: true });
    writeFileSync(join(dir, file), text);
  }
  return dir;
}

function options(target = 'linux-aarch64', env: Record<string, string> = {}): RenderOptions {
  return { targetPlatform: target, buildPlatform: 'linux-64', variantFiles: [], env };
}

function render(t: TestContext, files: Record<string, string>, target = 'linux-aarch64', env = {}): OutputRecord[] {
  return renderRecipe(loadRecipe(feedstock(t, files)), options(target, env)).records;
}

function only(records: OutputRecord[]): OutputRecord {
  assert.equal(records.length, 1, records.map((r) => r.name).join(', '));
  return records[0] as OutputRecord;
}

function renderError(t: TestContext, files: Record<string, string>, code: string, where: RegExp): string {
  try {
    render(t, files);
  } catch (err) {
    assert.ok(isAccelError(err), String(err));
    assert.equal(err.code, code, err.message);
    assert.match(err.message, where);
    return err.message;
  }
  assert.fail('rendered, but should not have');
}

const SHA = 'fa240dbf262be053f3898006d502d514936c818e422afdcf33921c63bed9bf2e';

test('context entries build on each other; expressions render in values, filters and string methods work; typed values stay typed', (t) => {
  const r = only(
    render(t, {
      'recipe/recipe.yaml': `
context:
  name: LibDemo
  version: "1.10"
  major: \${{ version.split('.')[0] }}
  number: 4
package:
  name: \${{ name | lower }}
  version: \${{ version }}
source:
  url: https://example.invalid/\${{ name }}-\${{ version }}.tar.gz
  sha256: ${SHA}
build:
  number: \${{ number + 1 }}
  script: echo \${{ major }} "\${PREFIX}" \${#x}
`,
    }),
  );
  assert.equal(r.name, 'libdemo');
  assert.equal(r.version, '1.10');
  assert.equal(r.build_number, 5);
  assert.equal(r.sources[0]?.url, 'https://example.invalid/LibDemo-1.10.tar.gz');
  // Only ${{ }} is a template: shell's ${VAR} and ${#x} stay as written.
  assert.equal(r.script?.text.trim(), ['echo 1 "$', '{PREFIX}" $', '{#x}'].join(''));
  assert.equal(r.script?.file, null);
});

test('if/then/else items in lists, nested, with a list branch; platform names and is_linux()/is_win()', (t) => {
  const files = {
    'recipe/recipe.yaml': `
package: {name: demo, version: "1.0"}
requirements:
  build:
    - \${{ compiler('c') }}
    - if: win
      then: [cmake, ninja]
      else:
        - make
        - if: aarch64
          then: qemu-user-static-is-not-a-package
    - if: is_linux(target_platform) and not is_win("linux-64")
      then: patchelf
  host:
    - if: osx
      then: libcxx
`,
  };
  const aarch64 = only(render(t, files));
  assert.deepEqual(aarch64.requirements.build, [
    'gcc_linux-aarch64',
    'make',
    'qemu-user-static-is-not-a-package',
    'patchelf',
  ]);
  assert.deepEqual(aarch64.requirements.host, []);
  const win = only(render(t, files, 'win-64'));
  assert.deepEqual(win.requirements.build, ['vs2019_win-64', 'cmake', 'ninja']);
});

test('skip: a bare expression or a list of them; match() compares a variant value with a version spec', (t) => {
  const recipe = (skip: string) => ({
    'recipe/recipe.yaml': `
package: {name: demo, version: "1.0"}
build:
  skip: ${skip}
requirements:
  host: [python]
`,
    'recipe/variants.yaml': `
python:
  - "3.9"
  - "3.12"
`,
  });
  assert.equal(render(t, recipe('win')).length, 2);
  assert.equal(render(t, recipe('linux')).length, 0);
  const kept = render(t, recipe('\n    - win\n    - match(python, "<3.10")'));
  assert.deepEqual(
    kept.map((r) => r.requirements.host),
    [['python 3.12']],
  );
  assert.match(kept[0]?.build_string ?? '', /^py312h[0-9a-f]{7}_0$/);
});

test('variants.yaml with if/then items, zip_keys; the variant keys used multiply the records; env.get and env.exists', (t) => {
  const dir = feedstock(t, {
    'recipe/recipe.yaml': `
context:
  flavor: \${{ env.get("DEMO_FLAVOR", default="plain") }}
package: {name: demo, version: "1.0"}
build:
  string: \${{ flavor }}_\${{ "set" if env.exists("DEMO_FLAVOR") else "unset" }}_h\${{ hash }}
requirements:
  host:
    - libfoo
`,
    'recipe/variants.yaml': `
libfoo:
  - if: linux
    then: ["1.2", "2.0"]
    else: "0.9"
unused:
  - a
  - b
`,
  });
  const r = renderRecipe(loadRecipe(dir), options('linux-aarch64', { DEMO_FLAVOR: 'fast' }));
  assert.deepEqual(
    r.records.map((x) => x.requirements.host[0]),
    ['libfoo 1.2', 'libfoo 2.0'],
  );
  assert.match(r.records[0]?.build_string ?? '', /^fast_set_h[0-9a-f]{7}$/);
  const osx = renderRecipe(loadRecipe(dir), options('osx-arm64'));
  assert.deepEqual(
    osx.records.map((x) => [x.requirements.host[0], x.build_string.split('_').slice(0, 2).join('_')]),
    [['libfoo 0.9', 'plain_unset']],
  );
});

test('.ci_support files select the variants of a v1 feedstock as of a meta.yaml one', (t) => {
  const dir = feedstock(t, {
    'recipe/recipe.yaml': `
package: {name: demo, version: "1.0"}
requirements:
  build: ["\${{ compiler('c') }}"]
`,
    '.ci_support/linux_aarch64_.yaml': `
c_compiler: [gcc]
c_compiler_version: ['14']
target_platform: [linux-aarch64]
`,
  });
  const r = renderWithCiSupport(loadRecipe(dir), options());
  assert.deepEqual(only(r.records).requirements.build, ['gcc_linux-aarch64 14']);
});

test('source: a list with patches, target_directory, file_name and md5; build: number, string, noarch, run_exports, ignore_run_exports, files', (t) => {
  const r = only(
    render(t, {
      'recipe/recipe.yaml': `
package: {name: demo, version: "2.1.3"}
source:
  - url: https://example.invalid/demo-2.1.3.tar.gz
    sha256: ${SHA}
    patches:
      - fix.patch
      - if: win
        then: win.patch
  - url: [https://example.invalid/data.bin, https://mirror.invalid/data.bin]
    md5: 0123456789abcdef0123456789abcdef
    file_name: data.bin
    target_directory: extra
build:
  number: 7
  noarch: generic
  files:
    include: [share/**]
    exclude: ["**/*.pyc"]
requirements:
  host: [zlib, lz4-c]
  run_exports:
    weak: ["\${{ pin_subpackage('demo', upper_bound='x.x') }}"]
    strong: ["\${{ pin_subpackage('demo', lower_bound='2.1', upper_bound=None) }}"]
  ignore_run_exports:
    by_name: [zlib]
    from_package: [lz4-c]
`,
    }),
  );
  assert.equal(r.sources.length, 2);
  assert.deepEqual(r.sources[0]?.patches, ['fix.patch']);
  assert.equal(r.sources[1]?.url, 'https://example.invalid/data.bin');
  assert.equal(r.sources[1]?.md5, '0123456789abcdef0123456789abcdef');
  assert.equal(r.sources[1]?.file_name, 'data.bin');
  assert.equal(r.sources[1]?.folder, 'extra');
  assert.equal(r.noarch, 'generic');
  assert.equal(r.subdir, 'noarch');
  assert.equal(r.build_number, 7);
  assert.deepEqual(r.files, ['share/**']);
  assert.deepEqual(r.files_exclude, ['**/*.pyc']);
  assert.deepEqual(r.run_exports, { weak: ['demo >=2.1.3,<2.2.0a0'], strong: ['demo >=2.1'] });
  assert.deepEqual(r.ignore_run_exports, { by_name: ['zlib'], from_package: ['lz4-c'] });
});

test('pin_subpackage and pin_compatible with lower_bound/upper_bound/exact; min_pin is conda-build’s and named so', (t) => {
  const r = only(
    render(t, {
      'recipe/recipe.yaml': `
package: {name: demo, version: "1.2.3"}
requirements:
  host: [numpy]
  run:
    - \${{ pin_compatible('numpy') }}
    - \${{ pin_compatible('numpy', lower_bound='x.x', upper_bound='x.x') }}
    - \${{ pin_subpackage('demo', exact=true) }}
`,
      'recipe/variants.yaml': 'numpy: ["1.26"]\n',
    }),
  );
  assert.deepEqual(r.requirements.run, [
    'numpy >=1.26,<2.0a0',
    'numpy >=1.26,<1.27.0a0',
    `demo 1.2.3 ${r.build_string}`,
  ]);
  renderError(
    t,
    {
      'recipe/recipe.yaml': `
package: {name: demo, version: "1.0"}
requirements:
  run_exports:
    - \${{ pin_subpackage('demo', max_pin='x') }}
`,
    },
    'ACCEL_CONDA_JINJA_TYPE',
    /recipe\.yaml:5: max_pin is conda-build's argument; recipe\.yaml says upper_bound/,
  );
});

test('build scripts: build.sh by default, a named file, a list of commands, content with env (quoted for the shell)', (t) => {
  const base = 'package: {name: demo, version: "1.0"}\n';
  const byDefault = only(render(t, { 'recipe/recipe.yaml': base, 'recipe/build.sh': 'make install\n' }));
  assert.deepEqual([byDefault.script?.file, byDefault.script?.text], ['build.sh', 'make install\n']);
  const named = only(
    render(t, {
      'recipe/recipe.yaml': `${base}build:\n  script: scripts/install\n`,
      'recipe/scripts/install.sh': 'cp x $PREFIX\n',
    }),
  );
  assert.deepEqual([named.script?.file, named.script?.text], ['scripts/install.sh', 'cp x $PREFIX\n']);
  const list = only(render(t, { 'recipe/recipe.yaml': `${base}build:\n  script:\n    - ./configure\n    - make\n` }));
  assert.equal(list.script?.text, './configure\nmake');
  const withEnv = only(
    render(t, {
      'recipe/recipe.yaml': `${base}build:\n  script:\n    env:\n      GREETING: "it's \${{ 1 + 1 }}"\n    content: echo "$GREETING"\n`,
    }),
  );
  assert.equal(withEnv.script?.text, `export GREETING='it'\\''s 2'\necho "$GREETING"`);
  renderError(
    t,
    { 'recipe/recipe.yaml': `${base}build:\n  script:\n    interpreter: python\n    content: print(1)\n` },
    'ACCEL_CONDA_UNSUPPORTED',
    /recipe\.yaml:4: build\/script\/interpreter: python is not supported here; accel runs bash scripts here/,
  );
  renderError(
    t,
    { 'recipe/recipe.yaml': `${base}build:\n  script: ../../etc/passwd.sh\n` },
    'ACCEL_CONDA_RECIPE',
    /outside the recipe directory/,
  );
});

test('multiple outputs inherit the top level’s build, requirements and about; pin_subpackage pins a sibling with its build string', (t) => {
  const r = render(t, {
    'recipe/recipe.yaml': `
context:
  version: "3.0.1"
recipe:
  name: demo-split
  version: \${{ version }}
source:
  url: https://example.invalid/demo-\${{ version }}.tar.gz
  sha256: ${SHA}
build:
  number: 2
about:
  license: MIT
  summary: shared summary
outputs:
  - package:
      name: libdemo
    build:
      script: build_lib.sh
    requirements:
      build: ["\${{ compiler('c') }}"]
      run_exports: ["\${{ pin_subpackage('libdemo') }}"]
    tests:
      - package_contents:
          lib: [demo]
          include: [demo.h]
          files:
            exists: [share/demo/*.txt]
            not_exists: [lib/libdemo.a]
  - package:
      name: demo-tools
      version: "3.0.1.post1"
    build:
      number: 5
      skip: win
    requirements:
      run: ["\${{ pin_subpackage('libdemo', exact=true) }}"]
    about:
      summary: the tools
`,
    'recipe/build_lib.sh': 'make install-lib\n',
    'recipe/build.sh': 'make install\n',
  });
  assert.deepEqual(
    r.map((x) => [x.name, x.version, x.build_number]),
    [
      ['libdemo', '3.0.1', 2],
      ['demo-tools', '3.0.1.post1', 5],
    ],
  );
  const [lib, tools] = r as [OutputRecord, OutputRecord];
  assert.equal(lib.script?.file, 'build_lib.sh');
  assert.equal(tools.script?.file, 'build.sh');
  assert.deepEqual(lib.run_exports.weak, ['libdemo >=3.0.1,<4.0a0']);
  assert.deepEqual(tools.requirements.run, [`libdemo 3.0.1 ${lib.build_string}`]);
  assert.equal(lib.sources[0]?.url, 'https://example.invalid/demo-3.0.1.tar.gz');
  assert.deepEqual([lib.about.license, lib.about.summary, tools.about.summary], ['MIT', 'shared summary', 'the tools']);
  assert.deepEqual(lib.test.commands, [
    'shopt -s globstar',
    'compgen -G "$PREFIX/share/demo/*.txt" >/dev/null',
    `test ! -e "$PREFIX"/'lib/libdemo.a'`,
    `test -e "$PREFIX"/'include/demo.h'`,
    `test -e "$PREFIX"/'lib/libdemo.so'`,
  ]);
});

test('cache: one staging build whose files the outputs take by their files: globs', (t) => {
  const r = render(t, {
    'recipe/recipe.yaml': `
recipe: {name: demo, version: "1.0"}
source:
  url: https://example.invalid/demo-1.0.tar.gz
  sha256: ${SHA}
cache:
  requirements:
    build: ["\${{ compiler('c') }}", make]
    host: [zlib]
  build:
    script:
      - make install
outputs:
  - package: {name: libdemo}
    build:
      files: [lib/*.so*]
  - package: {name: demo-devel}
    build:
      files:
        include: [include/**, lib/*.so]
    requirements:
      run: ["\${{ pin_subpackage('libdemo', exact=true) }}"]
`,
  });
  const [lib, devel] = r as [OutputRecord, OutputRecord];
  assert.deepEqual(lib.top_level, {
    name: 'demo',
    requirements: { build: ['gcc_linux-aarch64', 'make'], host: ['zlib'] },
    script: { file: null, text: 'make install' },
  });
  assert.deepEqual(lib.script, { file: null, text: '', shared: true });
  assert.deepEqual(lib.files, ['lib/*.so*']);
  assert.deepEqual(devel.files, ['include/**', 'lib/*.so']);
});

test('tests: script tests with requirements and files, python imports with pip_check', (t) => {
  const r = only(
    render(t, {
      'recipe/recipe.yaml': `
package: {name: demo, version: "1.0"}
tests:
  - script:
      - demo --version
      - if: linux
        then: ldd $PREFIX/bin/demo
    requirements:
      run: [make]
    files:
      recipe: [test_data/]
      source: [tests/*.txt]
  - python:
      imports: [demo, demo.sub]
`,
    }),
  );
  assert.deepEqual(r.test.commands, [
    'demo --version\nldd $PREFIX/bin/demo',
    "python -c 'import demo'",
    "python -c 'import demo.sub'",
    'python -m pip check',
  ]);
  assert.deepEqual(r.test.requires, ['make', 'pip', 'python']);
  assert.deepEqual(r.test.files, ['test_data/']);
  assert.deepEqual(r.test.source_files, ['tests/*.txt']);
  assert.deepEqual(r.test.imports, ['demo', 'demo.sub']);
});

test('errors name file:line and the key’s path: unknown keys, refused keys, undefined names, bad YAML, a bad if:', (t) => {
  const base = 'package: {name: demo, version: "1.0"}\n';
  renderError(
    t,
    { 'recipe/recipe.yaml': `${base}build:\n  numbr: 1\n` },
    'ACCEL_CONDA_UNSUPPORTED',
    /recipe\.yaml:3: unknown key build\/numbr/,
  );
  renderError(
    t,
    { 'recipe/recipe.yaml': `${base}outputs:\n  - package: {name: x}\n    tests:\n      - downstream: foo\n` },
    'ACCEL_CONDA_UNSUPPORTED',
    /recipe\.yaml:5: outputs\/tests\/downstream is not supported: downstream tests are not run/,
  );
  renderError(
    t,
    { 'recipe/recipe.yaml': `${base}requirements:\n  run:\n    - if: linux\n      then: x\n      than: y\n` },
    'ACCEL_CONDA_RECIPE',
    /recipe\.yaml:6: 'than' in a condition/,
  );
  const undef = renderError(
    t,
    { 'recipe/recipe.yaml': `${base}about:\n  summary: \${{ nope }}\n` },
    'ACCEL_CONDA_UNDEFINED',
    /recipe\.yaml:3: undefined Jinja variable 'nope'/,
  );
  assert.ok(undef);
  renderError(
    t,
    { 'recipe/recipe.yaml': `${base}build:\n  number: [1\n` },
    'ACCEL_CONDA_YAML',
    /recipe\.yaml:\d+: invalid YAML/,
  );
  renderError(
    t,
    { 'recipe/recipe.yaml': `${base}build:\n  number: two\n` },
    'ACCEL_CONDA_RECIPE',
    /recipe\.yaml:3: build\/number must be a non-negative integer/,
  );
  renderError(
    t,
    { 'recipe/recipe.yaml': 'schema_version: 2\npackage: {name: a, version: "1"}\n' },
    'ACCEL_CONDA_UNSUPPORTED',
    /recipe\.yaml:1: schema_version/,
  );
  renderError(t, { 'recipe/recipe.yaml': 'package: {name: a}\n' }, 'ACCEL_CONDA_RECIPE', /package\/version is missing/);
});

test('keys accepted but not acted on are warned about once, with their line', (t) => {
  const r = renderRecipe(
    loadRecipe(
      feedstock(t, {
        'recipe/recipe.yaml': `
package: {name: demo, version: "1.0"}
build:
  dynamic_linking:
    rpaths: [lib/]
`,
        'recipe/variants.yaml': 'c_compiler: [gcc, clang]\n',
      }),
    ),
    options(),
  );
  assert.equal(r.warnings.length, 1);
  assert.match(
    r.warnings[0] ?? '',
    /recipe\.yaml:4: build\/dynamic_linking is accepted but rpaths, overlinking and overdepending: accel does not check it/,
  );
});

test('package_contents checks run in bash pass on the files they name and fail, naming the path, on the others', (t) => {
  const [r] = render(t, {
    'recipe/recipe.yaml': `
package: {name: demo, version: "1.0"}
tests:
  - package_contents:
      files:
        exists: [share/demo/**/*.txt]
        not_exists: [lib/*.a, etc/demo.conf]
      include: [demo.h]
      lib: [demo]
      bin: [demo]
`,
  });
  const checks = (r as OutputRecord).test.commands.join('\n');
  const prefix = tempDir(t);
  const run = () => spawnSync('bash', ['-e', '-x', '-c', checks], { env: { PREFIX: prefix }, encoding: 'utf8' });
  const failing = run();
  assert.notEqual(failing.status, 0);
  assert.match(failing.stderr.trim().split('\n').at(-1) ?? '', /compgen -G '.*\/share\/demo\/\*\*\/\*\.txt'/);
  for (const f of ['share/demo/a/b/x.txt', 'include/demo.h', 'lib/libdemo.so', 'bin/demo']) {
    mkdirSync(join(prefix, f, '..'), { recursive: true });
    writeFileSync(join(prefix, f), '');
  }
  assert.equal(run().status, 0, run().stderr);
  writeFileSync(join(prefix, 'lib', 'libdemo.a'), '');
  const extra = run();
  assert.notEqual(extra.status, 0);
  assert.match(extra.stderr.trim().split('\n').at(-1) ?? '', /test -z .*libdemo\.a/);
  rmSync(join(prefix, 'lib', 'libdemo.a'));
  mkdirSync(join(prefix, 'etc'));
  writeFileSync(join(prefix, 'etc', 'demo.conf'), '');
  assert.match(run().stderr.trim().split('\n').at(-1) ?? '', /test '!' -e .*etc\/demo\.conf/);
});
