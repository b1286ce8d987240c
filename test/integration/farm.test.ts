import assert from 'node:assert/strict';
import { join } from 'node:path';
import { okStderr, runCommand, tempDir, testNeeding } from '../helpers.ts';
import {
  accelCc,
  ccStats,
  copyProject,
  farmCerts,
  farmStatus,
  objects,
  startSyncer,
  startWorker,
} from './farm-harness.ts';

/** Every test here runs gcc, g++, make, bwrap: without them it skips, naming them. */
const test = testNeeding('gcc', 'g++', 'make', 'bwrap');

const TUS = 22;

test('syncer + 3 workers: make -j12 through accel cc compiles every TU on the farm, byte-identical to gcc', async (t) => {
  const dir = tempDir(t);
  const src = copyProject(dir);
  const homes = await farmCerts(dir, { syncer: 'syncer', w1: 'worker', w2: 'worker', w3: 'worker', dev: 'client' });
  // Plain gcc in a second copy, with the same relative BUILD: dependency files must match too.
  const plainSrc = copyProject(join(dir, 'plain'));
  okStderr(await runCommand('make', ['-C', plainSrc, '-j4', 'BUILD=build', 'objs']));
  const expected = objects(join(plainSrc, 'build'));
  const expectedDeps = objects(join(plainSrc, 'build'), '.d');
  assert.equal(expected.size, TUS);

  const syncer = await startSyncer(t, homes.syncer as string, [src]);
  const workers = await Promise.all(['w1', 'w2', 'w3'].map((w) => startWorker(t, homes[w] as string, syncer.url, 4)));
  const dev = homes.dev as string;
  const env = { ACCEL_FARM_SYNCER: syncer.url };
  const r = await runCommand(
    'make',
    ['-C', src, '-j12', 'BUILD=build', `CC=${accelCc(dev, 'gcc')}`, `CXX=${accelCc(dev, 'g++')}`, 'all', 'check'],
    { env },
  );
  okStderr(r);
  const stats = await ccStats(dev);
  assert.equal(stats['farm compiled'], TUS, JSON.stringify(stats));
  assert.equal(stats.miss, TUS);
  assert.equal(Object.keys(stats).filter((k) => k.startsWith('farm fallback')).length, 0, JSON.stringify(stats));
  const built = objects(join(src, 'build'));
  assert.equal(built.size, TUS);
  for (const [name, bytes] of built) assert.ok(expected.get(name)?.equals(bytes), `${name} differs from plain gcc's`);
  const deps = objects(join(src, 'build'), '.d');
  assert.equal(deps.size, TUS);
  for (const [name, text] of deps) assert.equal(text.toString(), expectedDeps.get(name)?.toString(), name);

  const status = await farmStatus(dev, syncer.url);
  assert.equal(status.workers.length, 3);
  assert.equal(status.cores, 12);
  // Every TU finished on the farm, and only a resend explains a second run: make writes build/generated/version.h
  // into the watched tree mid-build, and a compile that ran against the tree before it is sent again.
  const { completed, resubmitted } = status.queue as { completed: number; resubmitted: number };
  assert.ok(completed >= TUS && completed <= TUS + resubmitted, JSON.stringify(status.queue));
  for (const w of status.workers) assert.ok(w.done > 0, `worker ${w.name} compiled nothing: ${JSON.stringify(status)}`);
  await Promise.all(workers.map((w) => w.stop()));
  await syncer.stop();
});
