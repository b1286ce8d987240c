// The key of a feedstock's build scripts' inputs (what changes it, what does not), and keeping and putting back
// what the scripts installed.
import assert from 'node:assert/strict';
import { cpSync, lstatSync, mkdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  type BuildInputs,
  BuildRecorder,
  buildKey,
  keptBuild,
  restoreRun,
  SCRIPTS_NS,
} from '../../src/conda/builder/build-cache.ts';
import type { Digest } from '../../src/store/digest.ts';
import { Store } from '../../src/store/store.ts';
import { tempDir } from '../helpers.ts';

function setup(dir: string): BuildInputs {
  const recipeDir = join(dir, 'recipe');
  const srcDir = join(dir, 'work');
  const prefix = join(dir, '_h_env');
  const buildPrefix = join(dir, '_build_env');
  for (const d of [recipeDir, srcDir, join(prefix, 'lib'), join(prefix, 'conda-meta'), join(buildPrefix, 'bin')]) {
    mkdirSync(d, { recursive: true });
  }
  writeFileSync(join(recipeDir, 'meta.yaml'), 'build:\n  number: 0\n');
  writeFileSync(join(recipeDir, 'build.sh'), 'make install PREFIX="$PREFIX"\n');
  writeFileSync(join(srcDir, 'Makefile'), 'install:\n\tcp hello $(PREFIX)/bin\n');
  writeFileSync(join(prefix, 'lib', 'libz.so.1'), 'ELF…');
  writeFileSync(join(prefix, 'conda-meta', 'zlib-1.3-h0_0.json'), '{"build_number": 0}');
  symlinkSync('/usr/bin/make', join(buildPrefix, 'bin', 'make'));
  const machine = join(dir, 'status');
  writeFileSync(machine, 'Package: make\nVersion: 4.3\n');
  return {
    runs: [
      {
        output: 'hello',
        text: 'make install PREFIX="$PREFIX"\n',
        env: { PREFIX: prefix, RECIPE_DIR: recipeDir, PKG_BUILDNUM: '0', PKG_BUILD_STRING: 'h0_0', PKG_NAME: 'hello' },
        shape: { host: ['zlib'], entry_points: [] },
      },
    ],
    srcDir,
    recipeDir,
    prefix,
    buildPrefix,
    identities: ['target linux-aarch64\ngcc 12.2.0 0123'],
    emulator: null,
    machinePackages: machine,
  };
}

const withEnv = (inputs: BuildInputs, env: Record<string, string>): BuildInputs => ({
  ...inputs,
  runs: inputs.runs.map((r) => ({ ...r, env: { ...r.env, ...env } })),
});

test('a build number bump, a new build of a host package and the recipe file do not change the key', (t) => {
  const dir = tempDir(t);
  const inputs = setup(dir);
  const key = buildKey(inputs);
  assert.equal(buildKey(withEnv(inputs, { PKG_BUILDNUM: '100', PKG_BUILD_STRING: 'h0_100' })), key);
  writeFileSync(join(inputs.prefix, 'conda-meta', 'zlib-1.3-h0_0.json'), '{"build_number": 100}');
  writeFileSync(join(inputs.recipeDir, 'meta.yaml'), 'build:\n  number: 100\n');
  assert.equal(buildKey(inputs), key);
  // The recipe directory elsewhere (a copy of the feedstock), named in the environment: the same key.
  const moved = join(dir, 'elsewhere');
  cpSync(inputs.recipeDir, moved, { recursive: true });
  assert.equal(buildKey({ ...withEnv(inputs, { RECIPE_DIR: moved }), recipeDir: moved }), key);
});

test('whatever a script can see changes the key', (t) => {
  const dir = tempDir(t);
  const inputs = setup(dir);
  const key = buildKey(inputs);
  const changes: [string, () => BuildInputs][] = [
    ['the script', () => ({ ...inputs, runs: [{ ...(inputs.runs[0] as BuildInputs['runs'][0]), text: 'make\n' }] })],
    ['a variable', () => withEnv(inputs, { CFLAGS: '-O0' })],
    ['the prefix path', () => withEnv(inputs, { PREFIX: '/other' })],
    ['the toolchain', () => ({ ...inputs, identities: ['target linux-aarch64\ngcc 13.1.0 4567'] })],
    [
      'the output’s host requirements',
      () => ({ ...inputs, runs: [{ ...(inputs.runs[0] as BuildInputs['runs'][0]), shape: { host: [] } }] }),
    ],
  ];
  for (const [what, change] of changes) assert.notEqual(buildKey(change()), key, what);
  const files: [string, () => void][] = [
    ['a source file', () => writeFileSync(join(inputs.srcDir, 'Makefile'), 'install:\n\ttrue\n')],
    ['a file beside the recipe', () => writeFileSync(join(inputs.recipeDir, 'build.sh'), 'make\n')],
    ['a host package’s file', () => writeFileSync(join(inputs.prefix, 'lib', 'libz.so.1'), 'ELF 2')],
    ['a build tool', () => symlinkSync('/usr/bin/cmake', join(inputs.buildPrefix, 'bin', 'cmake'))],
    ['the machine’s packages', () => writeFileSync(inputs.machinePackages, 'Package: make\nVersion: 4.4\n')],
  ];
  let last = key;
  for (const [what, change] of files) {
    change();
    const now = buildKey(inputs);
    assert.notEqual(now, last, what);
    last = now;
  }
});

test('the build number stays in the key when a script, a source file or a recipe file names it', (t) => {
  const dir = tempDir(t);
  const inputs = setup(dir);
  const bump = (i: BuildInputs) => withEnv(i, { PKG_BUILDNUM: '7' });
  const named = { ...inputs, runs: [{ ...(inputs.runs[0] as BuildInputs['runs'][0]), text: 'echo $PKG_BUILDNUM\n' }] };
  assert.notEqual(buildKey(bump(named)), buildKey(named), 'the script');
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell variable, written as scripts write it
  writeFileSync(join(inputs.srcDir, 'version.sh'), 'echo "${PKG_BUILD_STRING}"\n');
  assert.notEqual(buildKey(bump(inputs)), buildKey(inputs), 'a source file');
  rmSync(join(inputs.srcDir, 'version.sh'));
  writeFileSync(join(inputs.recipeDir, 'helper.sh'), 'echo $PKG_BUILDNUM\n');
  assert.notEqual(buildKey(bump(inputs)), buildKey(inputs), 'a recipe file');
  rmSync(join(inputs.recipeDir, 'helper.sh'));
  assert.equal(buildKey(bump(inputs)), buildKey(inputs), 'named nowhere');
});

test('kept files come back as the scripts left them: contents, modes, symlinks; a lost blob is no result', async (t) => {
  const dir = tempDir(t);
  const store = Store.open({ home: join(dir, 'home') });
  t.after(() => store.close());
  const prefix = join(dir, 'prefix');
  mkdirSync(join(prefix, 'bin'), { recursive: true });
  mkdirSync(join(prefix, 'lib'), { recursive: true });
  writeFileSync(join(prefix, 'bin', 'hello'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
  writeFileSync(join(prefix, 'lib', 'libhello.so.1'), 'ELF…', { mode: 0o644 });
  symlinkSync('libhello.so.1', join(prefix, 'lib', 'libhello.so'));
  const recorder = new BuildRecorder(store, join(dir, 'recipe'));
  const files = ['bin/hello', 'lib/libhello.so.1', 'lib/libhello.so'];
  await recorder.record(prefix, files);
  assert.equal(await recorder.keep('k1', join(prefix, 'bin', 'hello')), null);
  const kept = keptBuild(store, 'k1');
  assert.ok(kept);
  const fresh = join(dir, 'fresh');
  assert.deepEqual(restoreRun(store, kept.runs[0] ?? [], fresh), files);
  assert.equal(readFileSync(join(fresh, 'bin', 'hello'), 'utf8'), '#!/bin/sh\necho hi\n');
  assert.equal(lstatSync(join(fresh, 'bin', 'hello')).mode & 0o777, 0o755);
  assert.equal(lstatSync(join(fresh, 'lib', 'libhello.so.1')).mode & 0o777, 0o644);
  assert.equal(readlinkSync(join(fresh, 'lib', 'libhello.so')), 'libhello.so.1');
  assert.equal(keptBuild(store, 'other'), null);

  // The store lost a blob (gc, a damaged disk): the result is gone, the scripts run.
  const manifest = store.refs.get(SCRIPTS_NS, 'k1');
  assert.ok(manifest);
  const blob = kept.runs[0]?.find((f) => f.path === 'bin/hello')?.digest as Digest;
  store.quarantine(blob);
  assert.equal(keptBuild(store, 'k1'), null);
});

test('files that name the recipe directory are not kept', async (t) => {
  const dir = tempDir(t);
  const store = Store.open({ home: join(dir, 'home') });
  t.after(() => store.close());
  const recipe = join(dir, 'recipe');
  const prefix = join(dir, 'prefix');
  mkdirSync(join(prefix, 'share'), { recursive: true });
  writeFileSync(join(prefix, 'share', 'built-from.txt'), `recipe: ${recipe}/meta.yaml\n`);
  const recorder = new BuildRecorder(store, recipe);
  await recorder.record(prefix, ['share/built-from.txt']);
  assert.match(
    (await recorder.keep('k2', join(prefix, 'share', 'built-from.txt'))) ?? '',
    /names the recipe directory/,
  );
  assert.equal(store.refs.get(SCRIPTS_NS, 'k2'), undefined);
});
