import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { normalizeArchive } from '../../src/conda/pkg/ar-normalize.ts';
import { needsTools, tempDir } from '../helpers.ts';

function sh(cwd: string, cmd: string): string {
  const r = spawnSync('bash', ['-c', cmd], { cwd, encoding: 'utf8' });
  assert.equal(r.status, 0, `${cmd}: ${r.stderr}`);
  return r.stdout;
}

test(
  'normalizeArchive: an archive made with real timestamps (ar U, as ncurses does) becomes the same bytes whatever the times; it still links',
  needsTools('gcc', 'ar'),
  (t) => {
    const dir = tempDir(t, 'accel-ar-');
    writeFileSync(join(dir, 'a.c'), 'int a(void) { return 1; }\n');
    writeFileSync(join(dir, 'bb.c'), 'int bb(void) { return 2; }\n');
    sh(dir, 'gcc -c a.c bb.c');
    const make = (name: string, when: number) => {
      for (const o of ['a.o', 'bb.o']) utimesSync(join(dir, o), when, when);
      sh(dir, `ar -curvU ${name} a.o bb.o`);
      return join(dir, name);
    };
    const one = make('one.a', 1_000_000_000);
    const two = make('two.a', 1_700_000_000);
    assert.notDeepEqual(readFileSync(one), readFileSync(two), 'ar U stores the objects’ times');
    assert.equal(normalizeArchive(one), true);
    assert.equal(normalizeArchive(two), true);
    assert.deepEqual(readFileSync(one), readFileSync(two));
    assert.match(sh(dir, `ar tv ${one}`), /rw-r--r-- 0\/0 .* a\.o/);
    writeFileSync(join(dir, 'm.c'), 'int a(void); int bb(void);\nint main(void) { return a() + bb() - 3; }\n');
    sh(dir, `gcc m.c ${one} -o m && ./m`);
    writeFileSync(join(dir, 'not-ar'), 'just text\n');
    assert.equal(normalizeArchive(join(dir, 'not-ar')), false);
    assert.equal(readFileSync(join(dir, 'not-ar'), 'utf8'), 'just text\n');
  },
);
