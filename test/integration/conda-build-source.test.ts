import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { applyPatches, extractSource } from '../../src/conda/builder/source.ts';
import { Store } from '../../src/store/store.ts';
import { runCommand, tempDir, testNeeding } from '../helpers.ts';
import { CROSS_BUILD_TOOLS } from './conda-build-harness.ts';

/** Every test here runs the cross toolchain, patch, bzip2, xz, zip, unzip: without them it skips, naming them. */
const test = testNeeding(...CROSS_BUILD_TOOLS, 'patch', 'bzip2', 'xz', 'zip', 'unzip');

async function sh(cmd: string, args: string[], cwd: string): Promise<void> {
  const r = await runCommand(cmd, args, { cwd });
  assert.equal(r.code, 0, `${cmd} ${args.join(' ')}: ${r.stderr}`);
}

test('sources unpack from tar.gz, tar.bz2, tar.xz and zip (one top directory stripped) and patches apply', async (t) => {
  const dir = tempDir(t, 'accel-conda-src-');
  const tree = join(dir, 'tree');
  mkdirSync(join(tree, 'proj-1.0', 'src'), { recursive: true });
  writeFileSync(join(tree, 'proj-1.0', 'src', 'main.c'), 'int main(void) { return 1; }\n');
  writeFileSync(join(tree, 'proj-1.0', 'README'), 'proj\n');
  await sh('tar', ['-czf', join(dir, 'a.tar.gz'), 'proj-1.0'], tree);
  await sh('tar', ['-cjf', join(dir, 'a.tar.bz2'), 'proj-1.0'], tree);
  await sh('tar', ['-cJf', join(dir, 'a.tar.xz'), 'proj-1.0'], tree);
  await sh('zip', ['-qr', join(dir, 'a.zip'), 'proj-1.0'], tree);
  // Two top-level entries: nothing to strip.
  await sh('tar', ['-czf', join(dir, 'flat.tar.gz'), '-C', join(tree, 'proj-1.0'), 'src', 'README'], tree);
  const patch = join(dir, 'recipe', 'fix-exit.patch');
  mkdirSync(join(dir, 'recipe'));
  writeFileSync(
    patch,
    [
      '--- a/src/main.c',
      '+++ b/src/main.c',
      '@@ -1 +1 @@',
      '-int main(void) { return 1; }',
      '+int main(void) { return 0; }',
      '',
    ].join('\n'),
  );
  const store = Store.open({ home: join(dir, 'home') });
  t.after(() => store.close());
  for (const name of ['a.tar.gz', 'a.tar.bz2', 'a.tar.xz', 'a.zip', 'flat.tar.gz']) {
    const { digest } = await store.putFile(join(dir, name));
    const out = join(dir, 'out', name);
    await extractSource(store, digest, out, name);
    assert.equal(readFileSync(join(out, 'README'), 'utf8'), 'proj\n', name);
    await applyPatches(join(dir, 'recipe'), ['fix-exit.patch'], out, name);
    assert.equal(readFileSync(join(out, 'src', 'main.c'), 'utf8'), 'int main(void) { return 0; }\n', name);
  }
  // Context that moved by three lines: rattler-build (a recipe.yaml) applies it as its patch engine would, with
  // GNU patch's fuzz 3; a meta.yaml recipe gets patch's default (fuzz 2), which refuses it and changes nothing.
  const moved = join(dir, 'moved');
  mkdirSync(join(moved, 'src'), { recursive: true });
  writeFileSync(join(moved, 'src', 'f.txt'), 'a1\na2\na3\nTARGET old\na5\na6\na7\n');
  const fuzzy = [
    '--- a/src/f.txt',
    '+++ b/src/f.txt',
    '@@ -1,7 +1,7 @@',
    ' b1',
    ' b2',
    ' b3',
    '-TARGET old',
    '+TARGET new',
  ];
  for (const kind of ['v1', 'meta']) {
    mkdirSync(join(dir, kind));
    writeFileSync(join(dir, kind, kind === 'v1' ? 'recipe.yaml' : 'meta.yaml'), 'package: {name: x, version: "1"}\n');
    writeFileSync(join(dir, kind, 'moved.patch'), [...fuzzy, ' a5', ' b6', ' b7', ''].join('\n'));
  }
  await assert.rejects(applyPatches(join(dir, 'meta'), ['moved.patch'], moved, 'proj'), { code: 'ACCEL_CONDA_PATCH' });
  assert.equal(readFileSync(join(moved, 'src', 'f.txt'), 'utf8'), 'a1\na2\na3\nTARGET old\na5\na6\na7\n');
  assert.deepEqual(readdirSync(join(moved, 'src')), ['f.txt'], 'no .rej or .orig left behind');
  await applyPatches(join(dir, 'v1'), ['moved.patch'], moved, 'proj');
  assert.equal(readFileSync(join(moved, 'src', 'f.txt'), 'utf8'), 'a1\na2\na3\nTARGET new\na5\na6\na7\n');

  // A patch that does not apply is an error naming it.
  const again = join(dir, 'out', 'a.tar.gz');
  await assert.rejects(
    applyPatches(join(dir, 'recipe'), ['fix-exit.patch'], again, 'proj'),
    (err: Error & { code?: string }) => {
      assert.equal(err.code, 'ACCEL_CONDA_PATCH');
      assert.match(err.message, /fix-exit\.patch does not apply/);
      return true;
    },
  );
});
