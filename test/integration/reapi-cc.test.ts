// `accel cc` as a Remote Execution API client (farm.reapi), against accel's own REAPI server: no farm.dirs,
// inputs from the dependency scan, uploads only of what the engine lacks, outputs equal to plain gcc's; an
// engine that is down means local compiles, counted and announced once.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { ok, okStderr, runAccel, runCommand, tempDir, testNeeding } from '../helpers.ts';
import {
  accelCc,
  ccStats,
  copyProject,
  farmCerts,
  farmStatus,
  objects,
  reapiPort,
  startSyncer,
  startWorker,
} from './farm-harness.ts';

const test = testNeeding('gcc', 'g++', 'make', 'bwrap');
const TUS = 22;

test('make -j4 through accel cc with farm.reapi: every TU runs as an REAPI action on the syncer (no farm.dirs), objects and dependency files equal plain gcc’s', async (t) => {
  const dir = tempDir(t);
  const src = copyProject(dir);
  const homes = await farmCerts(dir, { syncer: 'syncer', w1: 'worker', dev: 'client' });
  const plainSrc = copyProject(join(dir, 'plain'));
  okStderr(await runCommand('make', ['-C', plainSrc, '-j4', 'BUILD=build', 'objs']));
  const expected = objects(join(plainSrc, 'build'));
  const expectedDeps = objects(join(plainSrc, 'build'), '.d');
  assert.equal(expected.size, TUS);

  // No --dir: the syncer ships no include tree; each action carries its own inputs.
  const syncer = await startSyncer(t, homes.syncer as string, []);
  const port = await reapiPort(syncer);
  await startWorker(t, homes.w1 as string, syncer.url, 2);
  const dev = homes.dev as string;
  const env = { ACCEL_FARM_REAPI: `grpcs://127.0.0.1:${port}` };
  okStderr(
    await runCommand(
      'make',
      ['-C', src, '-j4', 'BUILD=build', `CC=${accelCc(dev, 'gcc')}`, `CXX=${accelCc(dev, 'g++')}`, 'all', 'check'],
      { env },
    ),
  );
  const stats = await ccStats(dev);
  assert.equal(stats['farm compiled'], TUS, JSON.stringify(stats));
  assert.equal(Object.keys(stats).filter((k) => k.startsWith('farm fallback')).length, 0, JSON.stringify(stats));
  const built = objects(join(src, 'build'));
  assert.equal(built.size, TUS);
  for (const [name, bytes] of built) assert.ok(expected.get(name)?.equals(bytes), `${name} differs from plain gcc's`);
  for (const [name, text] of objects(join(src, 'build'), '.d'))
    assert.equal(text.toString(), expectedDeps.get(name)?.toString(), name);
  const status = await farmStatus(dev, syncer.url);
  assert.equal((status.queue as { completed: number }).completed, TUS, JSON.stringify(status.queue));
  assert.equal(status.syncer.files, 0, 'the syncer shipped no include tree');
});

test('farm.reapi pointing at an engine that is down: every TU compiles here, counted, and the build says so once', async (t) => {
  const dir = tempDir(t);
  const src = copyProject(dir);
  const homes = await farmCerts(dir, { dev: 'client' });
  const dev = homes.dev as string;
  // A port that refuses connections: bound, then closed.
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  const env = { ACCEL_FARM_REAPI: `grpcs://127.0.0.1:${port}`, ACCEL_FARM_START_TIMEOUT: '2' };
  const r = await runCommand(
    'make',
    ['-C', src, '-j4', 'BUILD=build', `CC=${accelCc(dev, 'gcc')}`, `CXX=${accelCc(dev, 'g++')}`, 'all', 'check'],
    { env },
  );
  const stderr = okStderr(r);
  const stats = await ccStats(dev);
  assert.equal(stats['farm fallback: farm unreachable'], 1, JSON.stringify(stats));
  assert.equal(stats['farm fallback: farm unreachable (remembered)'], TUS - 1, JSON.stringify(stats));
  assert.equal(stats['farm compiled'] ?? 0, 0);
  assert.equal(stderr.match(/compiling locally/g)?.length, 1, stderr);
});

test('through the daemon, an engine that lost the blobs it had (gc) is given them again: the next build still runs on the farm', async (t) => {
  const dir = tempDir(t);
  const src = copyProject(dir);
  const homes = await farmCerts(dir, { syncer: 'syncer', w1: 'worker', dev: 'client' });
  const syncer = await startSyncer(t, homes.syncer as string, []);
  const port = await reapiPort(syncer);
  await startWorker(t, homes.w1 as string, syncer.url, 2);
  const dev = homes.dev as string;
  const env = { ACCEL_FARM_REAPI: `grpcs://127.0.0.1:${port}`, ACCEL_CC_DAEMON_IDLE_TIMEOUT: '120' };
  const masq = ok(await runAccel(['--home', dev, 'cc', '--masquerade-dir'], { env })).trim();
  t.after(() => runAccel(['--home', dev, 'cc', 'daemon', '--stop']));
  const make = (cflags: string) =>
    runCommand(
      'make',
      [
        '-C',
        src,
        '-j4',
        'BUILD=build',
        `CC=${join(masq, 'gcc')}`,
        `CXX=${join(masq, 'g++')}`,
        `CFLAGS=${cflags}`,
        `CXXFLAGS=${cflags}`,
        'objs',
      ],
      { env },
    );
  okStderr(await make('-O2 -Wall'));
  // The engine forgets everything; the daemon still believes it has the headers it uploaded.
  ok(await runAccel(['--home', homes.syncer as string, 'store', 'gc', '--max-size', '1K']));
  okStderr(await runCommand('make', ['-C', src, 'clean']));
  okStderr(await make('-O1 -Wall'));
  const stats = await ccStats(dev);
  assert.equal(stats['farm compiled'], 2 * TUS, JSON.stringify(stats));
  assert.equal(Object.keys(stats).filter((k) => k.startsWith('farm fallback')).length, 0, JSON.stringify(stats));
});
