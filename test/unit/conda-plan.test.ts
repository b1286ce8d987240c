import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isCompilerPackage, isMachineTool } from '../../src/conda/build-tools.ts';
import { feedstockDeps } from '../../src/conda/builder/graph.ts';
import { planBuilds, planDot, stronglyConnected } from '../../src/conda/plan.ts';
import type { OutputRecord } from '../../src/conda/record.ts';
import { specName } from '../../src/conda/record.ts';
import type { RenderedRecipe } from '../../src/conda/render-variants.ts';

/**
 * A rendered feedstock reduced to what planning reads: output names, build, run and test requirements. Build
 * tools and compilers are split off as render splits them (they come from the build machine).
 */
function feedstock(name: string, outputs: string[], needs: string[], run: string[] = [], tests: string[] = []) {
  const records = outputs.map(
    (o) => ({ name: o, requirements: { run }, test: { requires: tests } }) as unknown as OutputRecord,
  );
  const machine = (s: string) => isMachineTool(specName(s)) || isCompilerPackage(specName(s));
  return {
    feedstock: name,
    metaFile: `${name}/recipe/meta.yaml`,
    records,
    buildRequires: needs.filter((s) => !machine(s)),
    machineRequires: needs.filter(machine).map(specName),
  } as RenderedRecipe;
}

test('plan: order, levels, edges through outputs, externals', () => {
  const plan = planBuilds([
    feedstock('hello', ['hello'], ['gcc_linux-aarch64 12', 'libshout', 'libgreet-devel', 'make']),
    feedstock('libshout', ['libshout'], ['gcc_linux-aarch64', 'libgreet >=1.2']),
    feedstock('libgreet', ['libgreet', 'libgreet-devel'], ['gcc_linux-aarch64', 'make', 'libgreet']),
    feedstock('greet-data', ['greet-data'], []),
  ]);
  assert.deepEqual(plan.levels, [['greet-data', 'libgreet'], ['libshout'], ['hello']]);
  assert.deepEqual(plan.order, ['greet-data', 'libgreet', 'libshout', 'hello']);
  assert.deepEqual(plan.cycles, []);
  assert.deepEqual(plan.edges, [
    { from: 'libgreet', to: 'hello', via: ['libgreet-devel'] },
    { from: 'libshout', to: 'hello', via: ['libshout'] },
    { from: 'libgreet', to: 'libshout', via: ['libgreet'] },
  ]);
  assert.deepEqual(plan.external, []);
  assert.deepEqual(plan.machine, [
    { name: 'gcc_linux-aarch64', needed_by: ['hello', 'libgreet', 'libshout'] },
    { name: 'make', needed_by: ['hello', 'libgreet'] },
  ]);
  assert.match(planDot(plan), /"libgreet" -> "libshout" \[label="libgreet"\];/);
});

test('plan: compilers and build tools come from the machine, so zlib <-> compilers and build-side python are no cycle', () => {
  const plan = planBuilds([
    feedstock('zlib', ['libzlib', 'zlib'], ['gcc_linux-aarch64', 'make']),
    feedstock('ctng-compilers', ['gcc_linux-aarch64', 'libgcc'], ['binutils_linux-aarch64', 'libzlib']),
    feedstock('make', ['make'], ['gcc_linux-aarch64']),
    feedstock('python', ['python'], ['gcc_linux-aarch64', 'make', 'libzlib']),
    feedstock('libpng', ['libpng'], ['gcc_linux-aarch64', 'libzlib', 'python', 'make'], ['libgcc >=12']),
  ]);
  assert.deepEqual(plan.cycles, []);
  // libpng's `python` is a build tool (the machine's); python's feedstock is no prerequisite, nor is make's.
  assert.deepEqual(plan.edges, [
    { from: 'zlib', to: 'ctng-compilers', via: ['libzlib'] },
    { from: 'zlib', to: 'libpng', via: ['libzlib'] },
    { from: 'zlib', to: 'python', via: ['libzlib'] },
  ]);
  assert.deepEqual(plan.levels, [
    ['make', 'zlib'],
    ['ctng-compilers', 'libpng', 'python'],
  ]);
});

test('plan: a self-contained cycle of three, and a feedstock needing its own output is no cycle', () => {
  const plan = planBuilds([
    feedstock('a', ['a'], ['b']),
    feedstock('b', ['b'], ['c']),
    feedstock('c', ['c'], ['a', 'c']),
  ]);
  assert.deepEqual(plan.cycles, [['a', 'b', 'c']]);
  assert.deepEqual(plan.levels, [['a', 'b', 'c']]);
  assert.deepEqual(planBuilds([feedstock('x', ['x'], ['x'])]).cycles, []);
});

test('plan: two feedstocks providing one package are reported, the first by name wins', () => {
  const plan = planBuilds([feedstock('b', ['p'], []), feedstock('a', ['p'], []), feedstock('c', ['c'], ['p'])]);
  assert.deepEqual(plan.duplicates, [{ name: 'p', feedstocks: ['a', 'b'] }]);
  assert.deepEqual(plan.edges, [{ from: 'a', to: 'c', via: ['p'] }]);
});

test('stronglyConnected: a chain of 50,000 does not overflow the stack; dependencies come first', () => {
  const n = 50_000;
  const nodes = Array.from({ length: n }, (_, i) => `n${i}`);
  const comps = stronglyConnected(nodes, (x) => {
    const i = Number(x.slice(1));
    return i + 1 < n ? [`n${i + 1}`] : [];
  });
  assert.equal(comps.length, n);
  assert.deepEqual(comps[0], [`n${n - 1}`]);
  assert.deepEqual(comps[n - 1], ['n0']);
});

test('one graph for plan and build: run and test requirements order feedstocks too, the provider does not depend on the input order', () => {
  const recipes = [
    feedstock('app', ['app'], ['gcc_linux-aarch64'], ['libfoo >=1'], ['pytest-lite']),
    feedstock('libfoo', ['libfoo'], []),
    feedstock('pytest-lite', ['pytest-lite'], []),
    feedstock('libfoo-fork', ['libfoo'], []),
  ];
  const plan = planBuilds(recipes);
  assert.deepEqual(plan.levels, [['libfoo', 'libfoo-fork', 'pytest-lite'], ['app']]);
  assert.deepEqual(plan.edges, [
    { from: 'libfoo', to: 'app', via: ['libfoo'] },
    { from: 'pytest-lite', to: 'app', via: ['pytest-lite'] },
  ]);
  assert.deepEqual(plan.external, []);
  assert.deepEqual(plan.machine, [{ name: 'gcc_linux-aarch64', needed_by: ['app'] }]);
  // What `conda build` waits for is what `conda plan` shows, whatever order the feedstocks come in.
  for (const order of [recipes, [...recipes].reverse()]) {
    const deps = feedstockDeps(order);
    assert.deepEqual(deps.get('app'), ['libfoo', 'pytest-lite']);
    for (const e of plan.edges) assert.ok(deps.get(e.to)?.includes(e.from), `${e.from} -> ${e.to}`);
    assert.equal([...deps.values()].flat().length, plan.edges.length);
  }
});
