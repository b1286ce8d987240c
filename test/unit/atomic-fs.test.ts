import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { replaceFileSync } from '../../src/core/atomic-fs.ts';
import { tempDir } from '../helpers.ts';

const modeOf = (path: string) => statSync(path).mode & 0o777;

test('replaceFileSync: new content, no temp file left; a number is the mode, applied whatever the umask', (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'out.o');
  writeFileSync(file, 'old');
  const umask = process.umask(0o077);
  try {
    replaceFileSync(file, 'new', 0o644);
    assert.equal(modeOf(file), 0o644);
    replaceFileSync(file, Buffer.from('newer'));
    assert.equal(modeOf(file), 0o644, 'the default mode');
  } finally {
    process.umask(umask);
  }
  assert.equal(readFileSync(file, 'utf8'), 'newer');
  assert.deepEqual(readdirSync(dir), ['out.o']);
});

test('replaceFileSync umask: the mode is filtered as a plain create would', (t) => {
  const file = join(tempDir(t), 'out.o');
  const umask = process.umask(0o027);
  try {
    replaceFileSync(file, 'x', { mode: 0o666, umask: true });
    assert.equal(modeOf(file), 0o640);
    replaceFileSync(file, 'x', { mode: 0o666 });
    assert.equal(modeOf(file), 0o666);
  } finally {
    process.umask(umask);
  }
});

test('replaceFileSync durable: the same result, synced', (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'addon.node');
  replaceFileSync(file, 'one', { mode: 0o555, durable: true, unlinkFirst: false });
  replaceFileSync(file, 'two', { mode: 0o555, durable: true, unlinkFirst: false });
  assert.equal(readFileSync(file, 'utf8'), 'two');
  assert.equal(modeOf(file), 0o555, 'a read-only file is replaced all the same');
  assert.deepEqual(readdirSync(dir), ['addon.node']);
});

test('replaceFileSync: a failure leaves no temp file and says which file', (t) => {
  const dir = tempDir(t);
  assert.throws(() => replaceFileSync(join(dir, 'missing', 'out.o'), 'x'), { code: 'ACCEL_FS_NOT_FOUND' });
  assert.deepEqual(readdirSync(dir), []);
});

test('replaceFileSync unlinkFirst false: a reader never finds the file missing', async (t) => {
  const file = join(tempDir(t), 'config.cfg');
  writeFileSync(file, 'v0');
  // A reader in another thread looks for the file as fast as it can while this thread replaces it.
  const stop = new Int32Array(new SharedArrayBuffer(4));
  const reader = new Worker(
    `const { existsSync } = require('node:fs');
     const { workerData, parentPort } = require('node:worker_threads');
     let missing = 0, looks = 0;
     parentPort.postMessage('looking');
     while (Atomics.load(workerData.stop, 0) === 0) { looks++; if (!existsSync(workerData.file)) missing++; }
     parentPort.postMessage({ missing, looks });`,
    { eval: true, workerData: { file, stop } },
  );
  const next = () =>
    new Promise<unknown>((resolve, reject) => {
      reader.once('message', resolve);
      reader.once('error', reject);
    });
  await next();
  const seen = next() as Promise<{ missing: number; looks: number }>;
  for (let i = 1; i <= 100; i++) replaceFileSync(file, `v${i}`, { unlinkFirst: false });
  Atomics.store(stop, 0, 1);
  const { missing, looks } = await seen;
  await reader.terminate();
  assert.ok(looks > 0);
  assert.equal(missing, 0);
  assert.equal(readFileSync(file, 'utf8'), 'v100');
});
