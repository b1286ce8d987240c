import assert from 'node:assert/strict';
import { test } from 'node:test';
import { homeLayout } from '../../src/core/home-layout.ts';
import { layoutOf } from '../../src/store/layout.ts';

function leaves(value: unknown): string[] {
  return typeof value === 'string' ? [value] : Object.values(value as object).flatMap(leaves);
}

test('homeLayout: every path is under the home and named once', () => {
  const home = '/h/accel';
  const { home: own, ...table } = homeLayout(home);
  assert.equal(own, home);
  const paths = leaves(table);
  for (const path of paths) assert.ok(path.startsWith(`${home}/`), path);
  assert.equal(new Set(paths).size, paths.length, 'no two entries name one path');
});

test("the store's Layout is the table's store and run entries", () => {
  const table = homeLayout('/h/accel');
  assert.deepEqual(layoutOf('/h/accel'), {
    home: '/h/accel',
    ...table.store,
    run: table.run.dir,
    gcLock: table.run.gcLock,
  });
});
