import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { ok, runAccel, runCommand, tempDir, testNeeding, until } from '../helpers.ts';
import {
  accelCc,
  ccStats,
  copyProject,
  farmCerts,
  farmStatus,
  getJson,
  objectFiles,
  slowCompilers,
  startSyncer,
  startWorker,
} from './farm-harness.ts';

/** Every test here runs gcc, g++, make, bwrap: without them it skips, naming them. */
const test = testNeeding('gcc', 'g++', 'make', 'bwrap');

const TUS = 22;

async function plainObjects(src: string, dir: string) {
  const plain = join(dir, 'plain');
  ok(await runCommand('make', ['-C', src, '-j4', `BUILD=${plain}`, 'objs']));
  return objectFiles(plain);
}

function build(src: string, dev: string, env: NodeJS.ProcessEnv, jobs: number) {
  const cc = [`CC=${accelCc(dev, 'gcc')}`, `CXX=${accelCc(dev, 'g++')}`];
  return runCommand('make', ['-C', src, `-j${jobs}`, 'BUILD=build', ...cc, 'all', 'check'], { env });
}

function assertSame(src: string, expected: Map<string, Buffer>): void {
  const built = objectFiles(join(src, 'build'));
  assert.equal(built.size, TUS);
  for (const [name, bytes] of built) assert.ok(expected.get(name)?.equals(bytes), `${name} differs from plain gcc's`);
}

test('kill -9 of a worker mid-build: its jobs are leased again elsewhere; nothing lost or duplicated', async (t) => {
  const dir = tempDir(t);
  const src = copyProject(dir);
  const homes = await farmCerts(dir, { syncer: 'syncer', slow: 'worker', fast: 'worker', dev: 'client' });
  const expected = await plainObjects(src, dir);
  const syncer = await startSyncer(t, homes.syncer as string, [src], { ACCEL_FARM_LEASE: '1' });
  // The doomed worker's compiles hang long enough to be killed in the middle of one.
  const slowPath = `${slowCompilers(dir, 30)}:${process.env.PATH}`;
  const slow = await startWorker(t, homes.slow as string, syncer.url, 2, { PATH: slowPath });
  const fast = await startWorker(t, homes.fast as string, syncer.url, 2);
  const dev = homes.dev as string;
  const making = build(src, dev, { ACCEL_FARM_SYNCER: syncer.url, ACCEL_FARM_START_TIMEOUT: '60' }, 6);
  await until(
    'a job on the slow worker',
    async () => ((await getJson(dev, `${slow.url}/status`)).running as number) > 0,
  );
  slow.child.kill('SIGKILL');
  ok(await making);
  assertSame(src, expected);
  const stats = await ccStats(dev);
  const status = await farmStatus(dev, syncer.url);
  assert.ok(status.queue.leaseExpiries >= 1, JSON.stringify(status.queue));
  const fallbacks = Object.entries(stats)
    .filter(([k]) => k.startsWith('farm fallback'))
    .reduce((n, [, v]) => n + v, 0);
  assert.equal((stats['farm compiled'] ?? 0) + fallbacks, TUS, JSON.stringify(stats));
  // Each accepted result reached one client: a compile's extra results are only those of resent jobs.
  assert.equal(status.queue.completed, stats['farm compiled'] + status.queue.resubmitted, JSON.stringify(status.queue));
  assert.ok(status.queue.completed > 0);
  await fast.stop();
  await syncer.stop();
});

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

test('restart of the syncer mid-build: clients resubmit to the new one and the build completes', async (t) => {
  const dir = tempDir(t);
  const src = copyProject(dir);
  const homes = await farmCerts(dir, { syncer: 'syncer', w1: 'worker', dev: 'client' });
  const expected = await plainObjects(src, dir);
  const port = await freePort();
  const first = await startSyncer(t, homes.syncer as string, [src], {}, port);
  const worker = await startWorker(t, homes.w1 as string, first.url, 3, {
    PATH: `${slowCompilers(dir, 0.5)}:${process.env.PATH}`,
  });
  const dev = homes.dev as string;
  const making = build(src, dev, { ACCEL_FARM_SYNCER: first.url, ACCEL_FARM_START_TIMEOUT: '60' }, 3);
  await until('a running job', async () => (await farmStatus(dev, first.url)).queue.running > 0);
  await first.stop('SIGTERM');
  const second = await startSyncer(t, homes.syncer as string, [src], {}, port);
  ok(await making);
  assertSame(src, expected);
  const status = await farmStatus(dev, second.url);
  assert.ok(status.queue.completed > 0, `the restarted syncer ran jobs: ${JSON.stringify(status.queue)}`);
  const stats = await ccStats(dev);
  assert.equal(stats.miss, TUS, JSON.stringify(stats));
  await worker.stop();
  await second.stop();
});

/** A syncer address that takes TCP connections and never speaks TLS (hung, or a firewall swallowing packets). */
async function hungSyncer(t: TestContext): Promise<{ url: string; connections: () => number }> {
  let connections = 0;
  const held: Socket[] = [];
  const hung = createServer((s) => {
    connections++;
    held.push(s);
    s.on('error', () => {});
  });
  await new Promise<void>((r) => hung.listen(0, '127.0.0.1', r));
  t.after(() => {
    for (const s of held) s.destroy();
    hung.close();
  });
  return { url: `https://127.0.0.1:${(hung.address() as AddressInfo).port}`, connections: () => connections };
}

/** A syncer address where nothing listens: a port that was just closed. */
async function closedSyncer(): Promise<{ url: string; connections: () => number }> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return { url: `https://127.0.0.1:${port}`, connections: () => 0 };
}

for (const [fault, down] of [
  ['takes connections and never answers', hungSyncer],
  ['refuses connections', closedSyncer],
] as const) {
  for (const via of ['accel cc --', 'the daemon'] as const) {
    test(`a syncer that ${fault}, through ${via}: the build asks it once and waits for one time-out, not one per compile`, async (t) => {
      const dir = tempDir(t);
      const src = copyProject(dir);
      const homes = await farmCerts(dir, { dev: 'client' });
      const dev = homes.dev as string;
      const syncer = await down(t);
      const env = { ACCEL_FARM_SYNCER: syncer.url, ACCEL_FARM_START_TIMEOUT: '2', ACCEL_CC_DAEMON_IDLE_TIMEOUT: '60' };
      const expected = await plainObjects(src, dir);
      if (via === 'accel cc --') ok(await build(src, dev, env, 4));
      else {
        const masq = ok(await runAccel(['--home', dev, 'cc', '--masquerade-dir'])).trim();
        t.after(() => runAccel(['--home', dev, 'cc', 'daemon', '--stop']));
        const cc = [`CC=${join(masq, 'gcc')}`, `CXX=${join(masq, 'g++')}`];
        ok(await runCommand('make', ['-C', src, '-j4', 'BUILD=build', ...cc, 'all', 'check'], { env }));
      }
      assertSame(src, expected);
      const stats = await ccStats(dev);
      // One compile asked (and waited for the time-out); the others waited for its answer or knew it already.
      assert.equal(stats['farm fallback: farm unreachable'], 1, JSON.stringify(stats));
      assert.equal(stats['farm fallback: farm unreachable (remembered)'], TUS - 1, JSON.stringify(stats));
      assert.ok(syncer.connections() <= 1, `the syncer was asked ${syncer.connections()} times for ${TUS} compiles`);
      // Remembered for the next build too, in the state file, with the time to ask again.
      const state = JSON.parse(readFileSync(join(dev, 'run', 'farm-down.json'), 'utf8'));
      assert.equal(state.syncer, syncer.url);
      assert.equal(state.backoffMs, 30_000);
      assert.ok(state.until > Date.now());
    });
  }
}
