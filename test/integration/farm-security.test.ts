import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { test } from 'node:test';
import { MtlsClient } from '../../src/net/client.ts';
import { initCa, installBundle, issueCert, writeBundle } from '../../src/net/tls.ts';
import { loadIdentity } from '../../src/net/tls-identity.ts';
import { needsTools, runCommand, tempDir } from '../helpers.ts';
import { accelCc, ccStats, copyProject, farmCerts, startSyncer } from './farm-harness.ts';

function job(args: string[], compiler = 'gcc', cwd = '/') {
  return { compiler, toolchain: 'x', cwd, args, env: {}, startTimeoutMs: 1000 };
}

test('the syncer refuses other CAs, missing certificates, wrong roles, code-loading arguments and other compilers', async (t) => {
  const dir = tempDir(t);
  const src = copyProject(dir);
  const homes = await farmCerts(dir, { syncer: 'syncer', w1: 'worker', dev: 'client' });
  // A client certificate from another installation's CA.
  const other = join(dir, 'other');
  await initCa(other);
  await issueCert(other, { name: 'evil', role: 'client' });
  await writeBundle(other, 'evil', join(dir, 'evil.json'));
  await installBundle(join(dir, 'evil-home'), join(dir, 'evil.json'));

  const syncer = await startSyncer(t, homes.syncer as string, [src]);
  const client = new MtlsClient(syncer.url, loadIdentity(homes.dev as string));
  const worker = new MtlsClient(syncer.url, loadIdentity(homes.w1 as string));
  // The foreign client trusts our CA (it knows the server), but its own certificate is not ours.
  const evilId = { ...loadIdentity(join(dir, 'evil-home')), ca: loadIdentity(homes.dev as string).ca };
  const evil = new MtlsClient(syncer.url, evilId);
  t.after(() => {
    for (const c of [client, worker, evil]) c.close();
  });

  await assert.rejects(evil.request('GET', '/status'), /certificate|alert|socket hang up|ECONNRESET/i);
  const anonymous = await new Promise<string>((resolve) => {
    const req = request(new URL('/status', syncer.url), { ca: evilId.ca }, (res) =>
      resolve(`status ${res.statusCode}`),
    );
    req.on('error', (err) => resolve(`error ${err.message}`));
    req.end();
  });
  assert.match(anonymous, /^error /, 'a request without a client certificate is refused');

  const asWorker = await worker.json<{ code: string }>('POST', '/jobs', job(['-c', `${src}/src/main.c`]));
  assert.equal(asWorker.status, 403);
  assert.equal(asWorker.value.code, 'ACCEL_FARM_ROLE_REFUSED');
  const asClient = await client.json<{ code: string }>('POST', '/work', { id: 'x', toolchains: [] });
  const impostor = await worker.json<{ code: string }>('POST', '/jobs/some-job/result?worker=w2-1234', {});
  assert.equal(impostor.status, 403, "a worker cannot post results under another certificate's name");
  const junk = await client.request('POST', '/jobs', 'not json');
  assert.equal(junk.status, 400);
  assert.match(junk.body.toString(), /ACCEL_FARM_BAD_REQUEST/);
  const shapeless = await client.json<{ code: string }>('POST', '/jobs', { compiler: 'gcc', args: 'rm -rf /' });
  assert.equal(shapeless.value.code, 'ACCEL_FARM_BAD_JOB');
  assert.equal(asClient.status, 403);
  assert.equal(asClient.value.code, 'ACCEL_FARM_ROLE_REFUSED');

  const plugin = await client.json<{ code: string; message: string }>(
    'POST',
    '/jobs',
    job(['-fplugin=/tmp/evil.so', '-c', 'src/main.c'], 'gcc', src),
  );
  assert.equal(plugin.status, 400);
  assert.equal(plugin.value.code, 'ACCEL_FARM_ARG_REFUSED');
  assert.match(plugin.value.message, /-fplugin=\/tmp\/evil\.so.*plugin/);
  const python = await client.json<{ code: string; message: string }>(
    'POST',
    '/jobs',
    job(['-c', 'x.c'], 'python3', src),
  );
  assert.equal(python.status, 400);
  assert.equal(python.value.code, 'ACCEL_FARM_COMPILER_REFUSED');
  assert.match(python.value.message, /python3.*allowlist/);
  const outside = await client.json<{ code: string }>('POST', '/jobs', job(['-I/etc', '-c', 'src/main.c'], 'gcc', src));
  assert.equal(outside.value.code, 'ACCEL_FARM_OUTSIDE_TREE');
  // A job that runs a command unchecked is made only by the syncer's REAPI side (reapiRun: any), never posted.
  const command = await client.json<{ code: string; message: string }>('POST', '/jobs', {
    // Arguments the allowlist passes: only `run` makes it a job whose argv the worker would not map or check.
    ...job(['-c', 'src/main.c'], 'gcc', src),
    run: 'command',
  });
  assert.equal(command.status, 400);
  assert.equal(command.value.code, 'ACCEL_FARM_BAD_JOB');
  assert.match(command.value.message, /set only by the syncer/);
  const status = await client.json<{ workers: unknown[]; queue: { refused: number; fallbacks: number } }>(
    'GET',
    '/status',
  );
  assert.equal(status.status, 200);
  assert.deepEqual(status.value.workers, []);
  assert.equal(status.value.queue.refused, 5, 'plugin, python3, outside the tree, a command, malformed');
  assert.equal(status.value.queue.fallbacks, 5);
});

test(
  'farm down: the build still succeeds locally and the stats count the fallbacks',
  needsTools('gcc', 'make'),
  async (t) => {
    const dir = tempDir(t);
    const src = copyProject(dir);
    const homes = await farmCerts(dir, { dev: 'client' });
    const dev = homes.dev as string;
    // Nothing listens on port 9 of loopback (discard is not running in CI containers).
    const env = { ACCEL_FARM_SYNCER: 'https://127.0.0.1:9', ACCEL_FARM_START_TIMEOUT: '0.3' };
    // A few C and C++ objects are enough to show it (each accel cc costs a Node start-up in CI).
    const build = join(dir, 'b');
    const targets = ['src/main.o', 'src/util/fib.o', 'src/core/vec.o', 'src/cpp/banner.o'].map(
      (o) => `${build}/obj/${o}`,
    );
    const r = await runCommand(
      'make',
      ['-C', src, '-j4', `BUILD=${build}`, `CC=${accelCc(dev, 'gcc')}`, `CXX=${accelCc(dev, 'g++')}`, ...targets],
      { env },
    );
    assert.equal(r.code, 0, r.stderr);
    for (const t of targets) assert.ok(existsSync(t), t);
    const stats = await ccStats(dev);
    // One compile finds the farm down; the others learn it from that one (run/farm-down.json).
    const unreachable = stats['farm fallback: farm unreachable'] ?? 0;
    const remembered = stats['farm fallback: farm unreachable (remembered)'] ?? 0;
    assert.ok(unreachable >= 1, JSON.stringify(stats));
    assert.equal(unreachable + remembered, targets.length, JSON.stringify(stats));
    assert.equal(stats.miss, targets.length);
  },
);
