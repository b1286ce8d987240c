import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { cleanEnv, listFiles, MAIN, type RunResult, runAccel, tempDir, unprivileged } from '../helpers.ts';

function failed(r: RunResult, exitCode: number, code: string): void {
  assert.equal(r.code, exitCode, `expected exit ${exitCode}, got ${r.code}: ${r.stderr}`);
  assert.match(r.stderr, new RegExp(`\\[${code}\\]`));
  assert.doesNotMatch(r.stderr, /internal error/);
}

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

test('a full filesystem (small tmpfs) fails the put cleanly', {
  skip: tmpfsSupport(),
}, async (t) => {
  const mnt = mkdtempSync(join(tmpdir(), 'accel-tmpfs-'));
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mnt]);
  t.after(() => {
    if (mounted.status === 0) spawnSync('umount', [mnt]);
    rmSync(mnt, { recursive: true, force: true });
  });
  assert.equal(mounted.status, 0, mounted.stderr?.toString());
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
