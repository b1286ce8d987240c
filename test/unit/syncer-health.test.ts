import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { checkSyncer, markSyncerDown, markSyncerUp, syncerMarkedDown } from '../../src/farm/syncer-health.ts';
import { ROOT, tempDir } from '../helpers.ts';

const SYNCER = 'https://127.0.0.1:9';

test('back-off: 30 s, doubling to 5 min; a success forgets it; another syncer is not confused with it', (t) => {
  const home = tempDir(t);
  const now = Date.now();
  const steps = [0, 1, 2, 3, 4, 5, 6].map((i) => markSyncerDown(home, SYNCER, now + i).backoffMs);
  assert.deepEqual(steps, [30_000, 60_000, 120_000, 240_000, 300_000, 300_000, 300_000]);
  assert.equal(syncerMarkedDown(home, SYNCER, now + 299_000), true);
  assert.equal(syncerMarkedDown(home, SYNCER, now + 301_000), false);
  assert.equal(syncerMarkedDown(home, 'https://elsewhere:5000', now), false);
  markSyncerUp(home, SYNCER);
  assert.equal(syncerMarkedDown(home, SYNCER), false);
  assert.equal(markSyncerDown(home, SYNCER).backoffMs, 30_000, 'after a success the back-off starts over');
  // The state file is what `accel cc --` processes share: complete JSON, owner-only.
  const state = JSON.parse(readFileSync(join(home, 'run', 'farm-down.json'), 'utf8'));
  assert.equal(state.syncer, SYNCER);
  assert.equal(state.backoffMs, 30_000);
});

test('concurrent compiles in one process: one probe; during the back-off none; after it one again', async (t) => {
  const home = tempDir(t);
  let probes = 0;
  let answer: (up: boolean) => void = () => {};
  const probe = () => {
    probes++;
    return new Promise<boolean>((r) => {
      answer = r;
    });
  };
  const calls = Array.from({ length: 8 }, () => checkSyncer(home, SYNCER, probe, 1000));
  await new Promise((r) => setTimeout(r, 50));
  answer(false);
  const results = await Promise.all(calls);
  assert.equal(probes, 1);
  assert.deepEqual(
    results.map((r) => r.up),
    Array(8).fill(false),
  );
  assert.equal(results.filter((r) => r.probed).length, 1, 'one compile asked; the others waited for its answer');
  // During the back-off, nobody asks.
  assert.deepEqual(await checkSyncer(home, SYNCER, probe, 1000), { up: false, probed: false });
  assert.equal(probes, 1);
  // The back-off is over: a second failure, marked 61 s ago, doubled it to 60 s. One probe again, and it succeeds.
  assert.equal(markSyncerDown(home, SYNCER, Date.now() - 61_000).backoffMs, 60_000);
  const again = Array.from({ length: 4 }, () => checkSyncer(home, SYNCER, probe, 1000));
  await new Promise((r) => setTimeout(r, 50));
  answer(true);
  assert.deepEqual(
    (await Promise.all(again)).map((r) => r.up),
    [true, true, true, true],
  );
  assert.equal(probes, 2);
  // Reached recently: compiles go without asking first.
  assert.deepEqual(await checkSyncer(home, SYNCER, probe, 1000), { up: true, probed: false });
  assert.equal(probes, 2);
});

test('concurrent `accel cc --` processes: one of them probes, the others wait for its answer in the state file', async (t) => {
  const dir = tempDir(t);
  const home = join(dir, 'home');
  const log = join(dir, 'probes.log');
  const script = join(dir, 'check.ts');
  writeFileSync(
    script,
    `import { appendFileSync } from 'node:fs';
import { checkSyncer } from ${JSON.stringify(join(ROOT, 'src', 'farm', 'syncer-health.ts'))};
const probe = async () => {
  appendFileSync(${JSON.stringify(log)}, process.pid + '\\n');
  await new Promise((r) => setTimeout(r, 300));
  return false;
};
console.log(JSON.stringify(await checkSyncer(${JSON.stringify(home)}, ${JSON.stringify(SYNCER)}, probe, 2000)));
`,
  );
  const run = () =>
    new Promise<{ up: boolean; probed: boolean }>((resolve, reject) => {
      const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
      });
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`exit ${code}`))));
    });
  const results = await Promise.all([run(), run(), run(), run()]);
  assert.equal(readFileSync(log, 'utf8').trim().split('\n').length, 1, 'one process asked the syncer');
  assert.deepEqual(
    results.map((r) => r.up),
    [false, false, false, false],
  );
  assert.equal(results.filter((r) => r.probed).length, 1);
});
