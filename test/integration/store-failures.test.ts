import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { type TestContext, test } from 'node:test';
import Database from 'better-sqlite3';
import { AccelError } from '../../src/core/errors.ts';
import type { Digest } from '../../src/store/digest.ts';
import { blobPath } from '../../src/store/layout.ts';
import { Store } from '../../src/store/store.ts';
import { startFakeUpstream } from '../fake-upstream.ts';
import { cleanEnv, failed, listFiles, MAIN, runAccel, sha256, tempDir, unprivileged, until } from '../helpers.ts';
import { CACHE_AUTH, startTestMirror } from '../mirror-harness.ts';

/** Index rows, read without opening the store (which would sweep tmp/). */
function blobRows(home: string): number {
  const db = new Database(join(home, 'index.db'), { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM blobs').get() as { n: number }).n;
  } finally {
    db.close();
  }
}

function assertNothingStored(home: string): void {
  assert.deepEqual(listFiles(join(home, 'blobs')), [], 'no blob file');
  assert.equal(blobRows(home), 0, 'no index row');
  assert.deepEqual(readdirSync(join(home, 'tmp')), [], 'no temp file');
}

test('SIGKILL in the middle of a large put leaves no blob and no row; the next start sweeps tmp/', async (t) => {
  const home = tempDir(t);
  const child = spawn(process.execPath, [MAIN, '--home', home, 'store', 'put', '-'], {
    env: cleanEnv(),
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  child.stdin.on('error', () => {});
  const chunk = Buffer.alloc(1 << 20, 0x5a);
  const tmp = join(home, 'tmp');
  let written = 0;
  // Feed until the temp file holds a good part of the data, then kill without warning.
  for (let i = 0; i < 400; i++) {
    if (!child.stdin.write(chunk)) await new Promise((r) => child.stdin.once('drain', r));
    written += chunk.length;
    const temps = existsSync(tmp) ? readdirSync(tmp) : [];
    if (temps.length > 0 && statSync(join(tmp, temps[0] as string)).size > 32 * 2 ** 20) break;
  }
  assert.ok(written < 400 * 2 ** 20, 'the put was still in progress when killed');
  child.kill('SIGKILL');
  assert.equal(await exited, 'SIGKILL');

  assert.equal(readdirSync(tmp).length, 1, 'the interrupted write is left in tmp/ only');
  assert.deepEqual(listFiles(join(home, 'blobs')), []);
  assert.equal(blobRows(home), 0);
  const info = await runAccel(['--home', home, '--json', 'store', 'info']);
  assert.equal(info.code, 0, info.stderr);
  assert.equal(JSON.parse(info.stdout.toString()).blobs, 0);
  assert.deepEqual(readdirSync(tmp), [], 'swept at the next start');
});

test('a full disk (file size limit) fails the put cleanly with ACCEL_FS_NO_SPACE', async (t) => {
  const home = tempDir(t);
  const input = join(tempDir(t), 'four-mb');
  writeFileSync(input, Buffer.alloc(4 << 20, 1));
  assert.equal((await runAccel(['--home', home, 'store', 'info'])).code, 0);
  // ulimit -f counts 1 KiB blocks: 1 MiB is room for the index but not for the blob.
  const limited = ['bash', '-c', 'ulimit -f 1024 && exec "$@"', 'limited'];
  for (const args of [
    ['store', 'put', input],
    ['store', 'put', '-'],
  ]) {
    const r = await runAccel(['--home', home, ...args], { wrapper: limited, input: Buffer.alloc(4 << 20, 2) });
    failed(r, 1, 'ACCEL_FS_NO_SPACE');
    assert.match(r.stderr, /hint: free disk space/);
    assertNothingStored(home);
  }
});

/** Whether this machine lets us mount a tmpfs (root in a container that allows it); the ulimit test always runs. */
function tmpfsSupport(): string | false {
  if (process.getuid?.() !== 0) return 'needs root to mount a tmpfs';
  const probe = mkdtempSync(join(tmpdir(), 'accel-tmpfs-probe-'));
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe]);
  if (mounted.status === 0) spawnSync('umount', [probe]);
  rmSync(probe, { recursive: true, force: true });
  return mounted.status === 0 ? false : `cannot mount a tmpfs here: ${mounted.stderr?.toString().trim()}`;
}

/**
 * A tmpfs of `size` mounted for the test. Unmounted lazily: a store may still hold files open when the test's
 * cleanup runs; the mount goes once they close.
 */
function smallDisk(t: TestContext, size: string): string {
  const mnt = mkdtempSync(join(tmpdir(), 'accel-tmpfs-'));
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', mnt]);
  t.after(() => {
    if (mounted.status === 0) spawnSync('umount', ['-l', mnt]);
    rmSync(mnt, { recursive: true, force: true });
  });
  assert.equal(mounted.status, 0, mounted.stderr?.toString());
  return mnt;
}

test('a full filesystem (small tmpfs) fails the put cleanly', {
  skip: tmpfsSupport(),
}, async (t) => {
  const mnt = smallDisk(t, '2m');
  const home = join(mnt, 'store');
  assert.equal((await runAccel(['--home', home, 'store', 'put', '-'], { input: 'small fits' })).code, 0);
  const r = await runAccel(['--home', home, 'store', 'put', '-'], { input: Buffer.alloc(4 << 20, 3) });
  failed(r, 1, 'ACCEL_FS_NO_SPACE');
  assert.equal(blobRows(home), 1, 'only the small blob');
  assert.deepEqual(readdirSync(join(home, 'tmp')), []);
});

test('an ACCEL_HOME the user cannot write is a clear error, not a crash', async (t) => {
  const parent = tempDir(t);
  chmodSync(parent, 0o755);
  const readOnly = join(parent, 'ro');
  mkdirSync(readOnly, { mode: 0o555 });
  const user = unprivileged();
  const env = { HOME: parent };
  const r = await runAccel(['--home', readOnly, 'store', 'put', '-'], { user, env, input: 'x' });
  failed(r, 1, 'ACCEL_STORE_NOT_WRITABLE');
  assert.match(r.stderr, /hint:/);

  // A store someone else created and we may only read: opening it for writing fails the same way.
  const other = join(parent, 'other');
  assert.equal((await runAccel(['--home', other, 'store', 'put', '-'], { input: 'x' })).code, 0);
  if (user) {
    const r2 = await runAccel(['--home', other, 'store', 'put', '-'], { user, env, input: 'y' });
    // The store is private to its user (0700): another user cannot even read its configuration.
    assert.ok(r2.code === 1 || r2.code === 2, r2.stderr);
    assert.match(r2.stderr, /\[ACCEL_(STORE_NOT_WRITABLE|FS_PERMISSION|CONFIG_UNREADABLE)\]/);
    assert.doesNotMatch(r2.stderr, /internal error/);
  }
});

test('an unreadable input file is a permission error with nothing stored', async (t) => {
  const dir = tempDir(t);
  chmodSync(dir, 0o755);
  const home = join(dir, 'home');
  mkdirSync(home);
  const secret = join(dir, 'secret');
  writeFileSync(secret, 'no');
  chmodSync(secret, 0o000);
  const user = unprivileged(home);
  if (!user) chmodSync(secret, 0o000);
  const r = await runAccel(['--home', home, 'store', 'put', secret], { user, env: { HOME: dir } });
  failed(r, 1, 'ACCEL_FS_PERMISSION');
  assert.match(r.stderr, new RegExp(`reading ${secret}`));
  assertNothingStored(home);
});

/** Fills the filesystem of `mnt` to the last block; returns the filler's path. */
function fillDisk(mnt: string): string {
  const filler = join(mnt, 'filler');
  spawnSync('dd', ['if=/dev/zero', `of=${filler}`, 'bs=4k'], { stdio: 'ignore' });
  return filler;
}

test('a full disk under the mirror: a miss is a prompt 507 with no temp file left, hits are still served', {
  skip: tmpfsSupport(),
}, async (t) => {
  const mnt = smallDisk(t, '4m');
  const up = await startFakeUpstream();
  t.after(() => up.close());
  const small = Buffer.alloc(64 * 1024, 7);
  up.files.set('/small.tar.gz', { body: small });
  up.files.set('/big.tar.gz', { body: Buffer.alloc(3 << 20, 9) });
  const home = join(mnt, 'store');
  const m = await startTestMirror(t, { home, allow: [up.origin] });
  const hit = `${m.base}/http/${up.origin}/small.tar.gz`;
  assert.equal((await httpGet(hit)).status, 200);
  await until('the small file stored', () => m.store.refs.get('url', `http://${up.origin}/small.tar.gz`) !== undefined);
  const cached = Buffer.from('a compile result');
  const cas = `${m.base}/cache/cas/${sha256(cached)}`;
  assert.equal((await httpRequest(cas, 'PUT', cached)).status, 200);
  // Make every hit due for an access-time write, which the full disk will refuse.
  const db = new Database(join(home, 'index.db'));
  db.prepare('UPDATE blobs SET last_access = 0').run();
  db.close();
  const filler = fillDisk(mnt);

  const started = Date.now();
  const miss = await httpGet(`${m.base}/http/${up.origin}/big.tar.gz`);
  assert.equal(miss.status, 507, `a full store is 507: ${miss.status} ${miss.body.toString().slice(0, 300)}`);
  assert.match(miss.body.toString(), /store is full/);
  assert.ok(Date.now() - started < 5000, `answered promptly (${Date.now() - started} ms)`);
  await until('the temp file removed', () => readdirSync(join(home, 'tmp')).length === 0);
  const put = await httpRequest(`${m.base}/cache/cas/${sha256('new result')}`, 'PUT', Buffer.from('new result'));
  assert.equal(put.status, 507, 'a build-cache upload into a full store');
  assert.deepEqual(readdirSync(join(home, 'tmp')), []);

  for (let i = 0; i < 2; i++) {
    const again = await httpGet(hit);
    assert.equal(again.status, 200, `a hit needs no space: ${again.body.toString().slice(0, 300)}`);
    assert.deepEqual(again.body, small);
    const cacheHit = await httpGet(cas);
    assert.equal(cacheHit.status, 200);
    assert.deepEqual(cacheHit.body, cached);
  }
  const lastAccess = m.store.stat(sha256(small) as Digest)?.lastAccess;
  assert.equal(lastAccess, 0, 'the access-time write was refused by the full disk, and the hit served anyway');
  await m.close();
  rmSync(filler);
});

test('an index that cannot grow (full disk) fails a put with ACCEL_FS_NO_SPACE and leaves no blob', {
  skip: tmpfsSupport(),
}, async (t) => {
  const mnt = smallDisk(t, '2m');
  const store = Store.open({ home: join(mnt, 'store') });
  t.after(() => store.close());
  await store.putBuffer(Buffer.from('before the disk filled'));
  const filler = fillDisk(mnt);
  // An empty blob takes no data block: the blob file fits, only the index write meets the full disk.
  const empty = Buffer.alloc(0);
  await assert.rejects(store.putBuffer(empty), (err: unknown) => {
    assert.ok(err instanceof AccelError, String(err));
    assert.equal(err.code, 'ACCEL_FS_NO_SPACE');
    assert.match(err.hint ?? '', /free disk space/);
    return true;
  });
  assert.equal(store.has(sha256(empty) as Digest), false, 'no index row');
  assert.equal(existsSync(blobPath(store.layout, sha256(empty) as Digest)), false, 'no blob file');
  assert.deepEqual(readdirSync(store.layout.tmp), []);
  rmSync(filler);
  assert.equal((await store.putBuffer(empty)).size, 0, 'stored once there is room');
});

test('a write the disk takes only part of (a short write, then ENOSPC) fails cleanly, never records a wrong size', {
  skip: tmpfsSupport(),
}, async (t) => {
  const mnt = smallDisk(t, '2m');
  const store = Store.open({ home: join(mnt, 'store') });
  t.after(() => store.close());
  const filler = fillDisk(mnt);
  // Room for 20 KiB: a 64 KiB write takes 20 KiB and the next attempt meets ENOSPC.
  spawnSync('truncate', ['-s', `-${20 * 1024}`, filler]);
  const writer = await store.createWriter();
  await assert.rejects(writer.write(Buffer.alloc(64 * 1024, 1)), /ACCEL_FS_NO_SPACE|no space left/);
  assert.equal(writer.size, 0, 'the writer counts only bytes that went in whole');
  await writer.abort();
  await assert.rejects(store.putStream(Readable.from([Buffer.alloc(64 * 1024, 2)])), (err: unknown) => {
    assert.ok(err instanceof AccelError && err.code === 'ACCEL_FS_NO_SPACE', String(err));
    return true;
  });
  assert.deepEqual(readdirSync(store.layout.tmp), [], 'no temp file');
  assert.equal(store.info().blobs, 0);
  rmSync(filler);
});

/** A request with a body (the build cache's PUT), answered in full. */
function httpRequest(url: string, method: string, body: Buffer): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent: false, headers: CACHE_AUTH }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** GET without keep-alive (a kept socket would hold the tmpfs busy), reporting a cut body. */
function httpGet(url: string): Promise<{ status: number; body: Buffer; broken: boolean }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', () => {});
      res.on('close', () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), broken: !res.complete }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}
