import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { tempDir } from '../helpers.ts';
import { condaBuild, failed, okJson, startUpstream, statuses } from './conda-build-harness.ts';

test('package tests: run_test.sh runs, machine tools in test/requires are not packages, --test skip skips', async (t) => {
  const dir = tempDir(t, 'accel-conda-build-tests-');
  const upstream = await startUpstream(t);
  const run = { home: join(dir, 'home'), channel: join(dir, 'channel'), upstream };
  const recipe = join(dir, 'tools-feedstock', 'recipe');
  mkdirSync(recipe, { recursive: true });
  writeFileSync(
    join(recipe, 'meta.yaml'),
    [
      'package: {name: tools, version: "1.0"}',
      'build: {noarch: generic}',
      'test:',
      '  requires: [make]',
      '  commands:',
      '    - make --version',
      '    - test -f $PREFIX/share/tools/marker',
    ].join('\n'),
  );
  writeFileSync(
    join(recipe, 'build.sh'),
    'mkdir -p "$PREFIX/share/tools"\necho built > "$PREFIX/share/tools/marker"\n',
  );
  writeFileSync(join(recipe, 'run_test.sh'), 'grep -qx nope "$PREFIX/share/tools/marker"\n');

  // run_test.sh runs after the commands, and fails here: the marker says "built".
  failed(await condaBuild(run, [join(dir, 'tools-feedstock')]), 'ACCEL_CONDA_TEST_FAILED');
  const skipped = okJson(await condaBuild(run, [join(dir, 'tools-feedstock'), '--test', 'skip']));
  assert.deepEqual(statuses(skipped), { tools: 'built' });

  writeFileSync(join(recipe, 'run_test.sh'), 'grep -qx built "$PREFIX/share/tools/marker"\n');
  const tested = okJson(await condaBuild(run, [join(dir, 'tools-feedstock')]));
  assert.deepEqual(statuses(tested), { tools: 'built' });
  assert.deepEqual(
    tested.results[0]?.packages.map((p) => `${p.subdir}/${p.filename}`),
    ['noarch/tools-1.0-hbf21a9e_0.conda'],
  );
});
