// The key of a conda test's inputs: what changes it, what does not, and which tests never get one.
import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { type TestInputs, testKey } from '../../src/conda/builder/test-cache.ts';
import { tempDir } from '../helpers.ts';

function setup(dir: string): TestInputs {
  const recipeDir = join(dir, 'recipe');
  const testDir = join(dir, 'test_tmp');
  const testPrefix = join(dir, '_test_env');
  const toolsDir = join(dir, '_test_tools');
  for (const d of [recipeDir, testDir, join(testPrefix, 'bin'), join(testPrefix, 'conda-meta'), toolsDir]) {
    mkdirSync(d, { recursive: true });
  }
  writeFileSync(join(recipeDir, 'meta.yaml'), 'build:\n  number: 0\n');
  writeFileSync(join(recipeDir, 'run_test.sh'), 'hello World\n');
  writeFileSync(join(testPrefix, 'bin', 'hello'), 'ELF…', { mode: 0o755 });
  writeFileSync(join(testPrefix, 'conda-meta', 'hello-1.0-h0_0.json'), '{"build_number": 0}');
  symlinkSync('/bin/sh', join(toolsDir, 'sh'));
  writeFileSync(join(toolsDir, 'activate'), '# active\n');
  return {
    script: `set -x\nhello --version\nbash -e '${recipeDir}/run_test.sh'\n`,
    recipeDir,
    testDir,
    testPrefix,
    toolsDir,
    env: {
      PREFIX: testPrefix,
      PATH: `${testPrefix}/bin:${toolsDir}:/usr/bin`,
      RECIPE_DIR: recipeDir,
      PKG_BUILDNUM: '0',
      PKG_NAME: 'hello',
    },
    workspacePaths: { root: dir, recipe: recipeDir },
    identities: ['target linux-aarch64\ngcc 12.2.0 0123'],
    emulator: null,
  };
}

const keyOf = (i: TestInputs) => {
  const k = testKey(i);
  assert.ok('key' in k, JSON.stringify(k));
  return k.key;
};

test('a build number bump keeps the key: the recipe file, conda-meta and PKG_BUILDNUM are not inputs', (t) => {
  const dir = tempDir(t);
  const inputs = setup(dir);
  const before = keyOf(inputs);
  writeFileSync(join(inputs.recipeDir, 'meta.yaml'), 'build:\n  number: 1\n');
  writeFileSync(join(inputs.testPrefix, 'conda-meta', 'hello-1.0-h0_0.json'), '{"build_number": 1}');
  assert.equal(keyOf({ ...inputs, env: { ...inputs.env, PKG_BUILDNUM: '1' } }), before);
});

test('what a test can see changes the key', async (t) => {
  const dir = tempDir(t);
  const inputs = setup(dir);
  const before = keyOf(inputs);
  const changes: [string, () => TestInputs][] = [
    ['the script', () => ({ ...inputs, script: `${inputs.script}hello --loud\n` })],
    ['a variable', () => ({ ...inputs, env: { ...inputs.env, PKG_NAME: 'hola' } })],
    ['the toolchain', () => ({ ...inputs, identities: ['target linux-aarch64\ngcc 12.3.0 4567'] })],
    ['the emulator', () => ({ ...inputs, emulator: '/bin/sh' })],
  ];
  for (const [what, change] of changes) assert.notEqual(keyOf(change()), before, what);
  const files: [string, string][] = [
    ['run_test.sh', join(inputs.recipeDir, 'run_test.sh')],
    ['a file of the package', join(inputs.testPrefix, 'bin', 'hello')],
    ['a test file', join(inputs.testDir, 'input.txt')],
    ['a machine tool script', join(inputs.toolsDir, 'activate')],
  ];
  let last = before;
  for (const [what, file] of files) {
    writeFileSync(file, `${what} changed\n`);
    const now = keyOf(inputs);
    assert.notEqual(now, last, what);
    last = now;
  }
});

test('a test naming the build number keeps it in its key; one reading SRC_DIR gets none, a build script reading it does not count', (t) => {
  const dir = tempDir(t);
  const inputs = setup(dir);
  const names = { ...inputs, script: 'test "$PKG_BUILDNUM" = 0\n' };
  assert.notEqual(keyOf(names), keyOf({ ...names, env: { ...names.env, PKG_BUILDNUM: '1' } }));
  // The build script beside the test reads $SRC_DIR, as every build script does: no test runs it.
  writeFileSync(join(inputs.recipeDir, 'build.sh'), 'cmake -S "$SRC_DIR" -B build\n');
  keyOf(inputs);
  // A helper that run_test.sh runs reads it: no key.
  writeFileSync(join(inputs.recipeDir, 'run_test.sh'), 'bash helper.sh\n');
  writeFileSync(join(inputs.recipeDir, 'helper.sh'), 'cd "$SRC_DIR" && make check\n');
  const k = testKey(inputs);
  assert.ok('uncached' in k && /SRC_DIR/.test(k.uncached), JSON.stringify(k));
});

test('the workspace and recipe paths are named, not spelled: the same build elsewhere has the same key', (t) => {
  const a = setup(tempDir(t));
  const b = setup(tempDir(t));
  assert.equal(keyOf(a), keyOf(b));
});
