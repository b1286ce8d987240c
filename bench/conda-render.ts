// Renders 200 generated conda-build recipes (simple, with zipped variants, split into outputs) and reports the
// time per recipe, in process and through the CLI. Goal (issue 8): ≤ 10 ms per simple recipe.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { bundleAccel } from '../build/bundle.ts';
import { planBuilds } from '../src/conda/plan.ts';
import { loadRecipe } from '../src/conda/recipe.ts';
import { renderRecipe } from '../src/conda/render.ts';
import type { RenderOptions } from '../src/conda/render-variants.ts';
import { fmt, medianMs, sh } from './util.ts';

const MAIN = resolve(import.meta.dirname, '..', 'src', 'main.ts');
const KINDS = { simple: 100, variants: 60, split: 40 } as const;
type Kind = keyof typeof KINDS;

const CBC = `c_compiler:
  - gcc       # [linux]
c_compiler_version:
  - 12        # [linux]
  - 13        # [linux]
c_stdlib:
  - sysroot   # [linux]
c_stdlib_version:
  - 2.17      # [linux]
python:
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
`;

function meta(kind: Kind, i: number): string {
  const dep = i > 0 ? `    - pkg${i - 1}\n` : '';
  const head = `{% set name = "pkg${i}" %}
{% set version = "1.${i % 7}.${i}" %}
package:
  name: {{ name|lower }}
  version: {{ version }}
source:
  url: https://upstream.invalid/{{ name }}-{{ version }}.tar.gz
  sha256: ${'0'.repeat(63)}${i % 10}
  patches:
    - fix-cross.patch  # [build_platform != target_platform]
build:
  number: ${i % 3}
  skip: true  # [win]
`;
  if (kind === 'simple') {
    return `${head}requirements:
  build:
    - {{ compiler('c') }}
    - make  # [unix]
  host:
${dep}    - zlib
test:
  commands:
    - test -f $PREFIX/lib/lib{{ name }}.so  # [linux]
`;
  }
  if (kind === 'variants') {
    return `${head}requirements:
  build:
    - {{ compiler('c') }}
    - {{ stdlib('c') }}
  host:
    - python
    - numpy
${dep}  run:
    - python
    - {{ pin_compatible('numpy') }}
test:
  imports:
    - {{ name }}
  commands:
    - python -c "import {{ name }}"  # [py>=311]
`;
  }
  return `${head}requirements:
  build:
    - {{ compiler('c') }}
outputs:
  - name: lib{{ name }}
    build:
      run_exports:
        - {{ pin_subpackage('lib' ~ name, max_pin='x.x') }}
    requirements:
      build:
        - {{ compiler('c') }}
      host:
${dep.replace('    -', '        -')}    test:
      commands:
        {% for f in ["lib/lib" ~ name ~ ".so", "include/" ~ name ~ ".h"] %}
        - test -f $PREFIX/{{ f }}
        {% endfor %}
  - name: {{ name }}-devel
    requirements:
      run:
        - {{ pin_subpackage('lib' ~ name, exact=True) }}
`;
}

export async function benchCondaRender(print: (line: string) => void): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'accel-bench-conda-'));
  try {
    const dirs: { kind: Kind; dir: string }[] = [];
    let i = 0;
    for (const kind of Object.keys(KINDS) as Kind[]) {
      for (let n = 0; n < KINDS[kind]; n++, i++) {
        const dir = join(root, `pkg${i}-feedstock`);
        mkdirSync(join(dir, 'recipe'), { recursive: true });
        writeFileSync(join(dir, 'recipe', 'meta.yaml'), meta(kind, i));
        writeFileSync(join(dir, 'recipe', 'conda_build_config.yaml'), CBC);
        writeFileSync(join(dir, 'recipe', 'build.sh'), 'make CC="$CC" && make install PREFIX="$PREFIX"\n');
        dirs.push({ kind, dir });
      }
    }
    const options: RenderOptions = {
      targetPlatform: 'linux-aarch64',
      buildPlatform: 'linux-64',
      variantFiles: [],
      env: {},
    };
    const perKind = new Map<Kind, number[]>();
    const records = new Map<Kind, number>();
    const renderAll = () => {
      for (const { kind, dir } of dirs) {
        const start = performance.now();
        const out = renderRecipe(loadRecipe(dir), options);
        const ms = performance.now() - start;
        perKind.set(kind, [...(perKind.get(kind) ?? []), ms]);
        records.set(kind, out.records.length);
      }
    };
    const coldStart = performance.now();
    renderAll();
    const coldMs = performance.now() - coldStart;
    perKind.clear();
    const warmTotal = await medianMs(5, renderAll);
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
    const max = (xs: number[]) => Math.max(...xs);

    print('## conda render (`bench/conda-render.ts`)');
    print('');
    print(
      `200 generated recipes (${KINDS.simple} simple, ${KINDS.variants} with 3 zipped python/numpy × 2 compiler ` +
        `variants, ${KINDS.split} split into 2 outputs with pin_subpackage), rendered for linux-aarch64 from ` +
        'linux-64: read meta.yaml and conda_build_config.yaml, selectors, Jinja, YAML, records.',
    );
    print('');
    print('| recipe kind | recipes | records each | median ms per recipe | max ms |');
    print('| --- | ---: | ---: | ---: | ---: |');
    for (const kind of Object.keys(KINDS) as Kind[]) {
      const xs = perKind.get(kind) ?? [];
      print(`| ${kind} | ${KINDS[kind]} | ${records.get(kind)} | ${fmt(median(xs), 2)} | ${fmt(max(xs), 2)} |`);
    }
    print('');
    print(`- all 200, in one process: ${fmt(warmTotal)} ms warm (median of 5), ${fmt(coldMs)} ms the first time`);
    const simple = dirs[0]?.dir as string;
    const node = await medianMs(5, () => sh(`${process.execPath} -e 0`));
    const cli = await medianMs(5, () => sh(`${process.execPath} ${MAIN} conda render ${simple} > /dev/null`));
    // The executable runs one esbuild bundle; bundling the same way measures that without building it.
    const bundle = join(root, 'accel.cjs');
    bundleAccel(bundle);
    const bundled = await medianMs(5, () => sh(`${process.execPath} ${bundle} conda render ${simple} > /dev/null`));
    print(
      `- CLI, one simple recipe: ${fmt(cli)} ms from source, ${fmt(bundled)} ms bundled as in the executable ` +
        `(\`node -e 0\` alone: ${fmt(node)} ms)`,
    );
    const plan = await medianMs(3, () =>
      sh(`${process.execPath} ${MAIN} conda plan ${root} --target-platform linux-aarch64 > /dev/null`),
    );
    const check = planBuilds(dirs.map(({ dir }) => renderRecipe(loadRecipe(dir), options)));
    print(`- CLI, \`conda plan\` over all 200 (a chain of ${check.levels.length} levels): ${fmt(plan)} ms`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
