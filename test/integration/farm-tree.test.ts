import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MtlsClient } from '../../src/net/client.ts';
import { loadIdentity } from '../../src/net/tls-identity.ts';
import { runAccel, runCommand, tempDir, testNeeding } from '../helpers.ts';
import { ccStats, copyProject, farmCerts, getJson, startSyncer, startWorker } from './farm-harness.ts';

/** Every test here runs gcc, bwrap: without them it skips, naming them. */
const test = testNeeding('gcc', 'bwrap');

test('a header edit under a watched dir reaches the next farm compile, moving only that blob', async (t) => {
  const dir = tempDir(t);
  const src = copyProject(dir);
  mkdirSync(join(src, 'out'));
  const homes = await farmCerts(dir, { syncer: 'syncer', w1: 'worker', dev: 'client' });
  const dev = homes.dev as string;
  const syncer = await startSyncer(t, homes.syncer as string, [src]);
  const worker = await startWorker(t, homes.w1 as string, syncer.url, 1);
  const flags = ['-Iinclude', '-Ithird_party/include', '-O2', '-Wall', '-c', 'src/core/matrix.c'];
  const env = { ACCEL_FARM_SYNCER: syncer.url };
  const farmCompile = async (out: string) => {
    const r = await runAccel(['--home', dev, 'cc', '--', 'gcc', ...flags, '-o', out], { cwd: src, env });
    assert.equal(r.code, 0, r.stderr);
  };
  const localCompile = async (out: string) => {
    const r = await runCommand('gcc', [...flags, '-o', out], { cwd: src });
    assert.equal(r.code, 0, r.stderr);
  };

  await farmCompile('out/farm1.o');
  await localCompile('out/local1.o');
  assert.ok(readFileSync(join(src, 'out/farm1.o')).equals(readFileSync(join(src, 'out/local1.o'))));
  const before = (await getJson(dev, `${worker.url}/status`)).blobsFetched as number;

  const header = join(src, 'include', 'rare.h');
  writeFileSync(header, readFileSync(header, 'utf8').replace('0x5eedu', '0x5eeeu'));
  await farmCompile('out/farm2.o');
  await localCompile('out/local2.o');
  const farm2 = readFileSync(join(src, 'out/farm2.o'));
  assert.ok(farm2.equals(readFileSync(join(src, 'out/local2.o'))), 'the worker compiled the edited header');
  assert.ok(!farm2.equals(readFileSync(join(src, 'out/farm1.o'))), 'the edit changes the object');

  const after = (await getJson(dev, `${worker.url}/status`)).blobsFetched as number;
  assert.equal(after - before, 1, 'only the edited header moved to the worker');
  const stats = await ccStats(dev);
  assert.equal(stats['farm compiled'], 2, JSON.stringify(stats));

  // The syncer's status, as text and as its HTML page.
  const text = await runAccel(['--home', dev, 'farm', 'status', '--syncer', syncer.url]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout.toString(), /workers: +1 \(1 cores\)[\s\S]*w1: 1 cores, 0 running, 2 done/);
  const client = new MtlsClient(syncer.url, loadIdentity(dev));
  t.after(() => client.close());
  const page = await client.request('GET', '/');
  assert.equal(page.status, 200);
  assert.match(page.body.toString(), /<title>accel farm<\/title>[\s\S]*1 workers, 1 cores/);

  // `gcc -c x.c` names no output: the worker's object still comes back, where gcc would have put it.
  const noOutput = [...flags, '-DNO_OUTPUT_GIVEN=1'];
  const r = await runAccel(['--home', dev, 'cc', '--', 'gcc', ...noOutput], { cwd: src, env });
  assert.equal(r.code, 0, r.stderr);
  const local = await runCommand('gcc', [...noOutput, '-o', 'out/local3.o'], { cwd: src });
  assert.equal(local.code, 0, local.stderr);
  assert.ok(readFileSync(join(src, 'matrix.o')).equals(readFileSync(join(src, 'out/local3.o'))));
  assert.equal((await ccStats(dev))['farm compiled'], 3);
});

test('a real compile error on a worker comes back like a local one, with client paths', async (t) => {
  const dir = tempDir(t);
  const src = copyProject(dir);
  const homes = await farmCerts(dir, { syncer: 'syncer', w1: 'worker', dev: 'client' });
  const syncer = await startSyncer(t, homes.syncer as string, [src]);
  await startWorker(t, homes.w1 as string, syncer.url, 1);
  writeFileSync(join(src, 'include', 'broken.h'), 'int broken(void) { return nope; }\n');
  writeFileSync(join(src, 'src', 'bad.c'), '#include "broken.h"\nint main(void) { return broken(); }\n');
  const flags = [`-I${src}/include`, '-c', 'src/bad.c', '-o', 'bad.o'];
  const local = await runCommand('gcc', flags, { cwd: src });
  const env = { ACCEL_FARM_SYNCER: syncer.url };
  const farm = await runAccel(['--home', homes.dev as string, 'cc', '--', 'gcc', ...flags], { cwd: src, env });
  assert.equal(farm.code, local.code);
  assert.notEqual(farm.code, 0);
  assert.equal(farm.stderr, local.stderr);
  assert.match(farm.stderr, new RegExp(`${src}/include/broken.h:1:.*nope`));
  const stats = await ccStats(homes.dev as string);
  assert.equal(stats['farm compiled'], 1, JSON.stringify(stats));
});
