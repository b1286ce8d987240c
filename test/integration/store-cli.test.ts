import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  closeSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { SCHEMA_VERSION } from '../../src/store/db.ts';
import {
  cleanEnv,
  failed,
  MAIN,
  NOBODY,
  ok,
  ROOT,
  type RunResult,
  runAccel,
  runCommand,
  sha256,
  tempDir,
  until,
} from '../helpers.ts';

test('put prints the digest first on the line; get returns the bytes; empty and 1-byte inputs', async (t) => {
  const home = tempDir(t);
  for (const content of ['', 'x', 'hello\n']) {
    const file = join(home, '..', `${home.split('/').pop()}-in`);
    writeFileSync(file, content);
    t.after(() => writeFileSync(file, ''));
    const line = ok(await runAccel(['--home', home, 'store', 'put', file]));
    assert.equal(line.split(/\s+/)[0], sha256(content));
    const viaStdin = ok(await runAccel(['--home', home, 'store', 'put', '-'], { input: content }));
    assert.equal(viaStdin, `${sha256(content)}  -\n`);
    const got = await runAccel(['--home', home, 'store', 'get', sha256(content)]);
    assert.equal(got.code, 0, got.stderr);
    assert.equal(got.stdout.toString(), content);
  }
  const info = JSON.parse(ok(await runAccel(['--home', home, '--json', 'store', 'info'])));
  assert.equal(info.blobs, 3);
  assert.equal(info.schemaVersion, SCHEMA_VERSION);
});

test('--json put gives {digest,size}; stat, pin and ls report what the index holds', async (t) => {
  const home = tempDir(t);
  const put = JSON.parse(
    ok(await runAccel(['--home', home, '--json', 'store', 'put', '--pin', '-'], { input: 'abc' })),
  );
  assert.deepEqual(put, { digest: sha256('abc'), size: 3 });
  const stat = JSON.parse(ok(await runAccel(['--home', home, '--json', 'store', 'stat', `sha256:${put.digest}`])));
  assert.equal(stat.pinned, true);
  assert.equal(stat.size, 3);
  assert.equal(stat.path, join(home, 'blobs', 'sha256', put.digest.slice(0, 2), put.digest));
  ok(await runAccel(['--home', home, 'store', 'unpin', put.digest]));
  assert.match(ok(await runAccel(['--home', home, 'store', 'stat', put.digest])), /pinned: +no/);
  assert.deepEqual(JSON.parse(ok(await runAccel(['--home', home, '--json', 'store', 'ls', '--ns', 'url']))), []);
});

test('a 200 MB blob streams through put and get with flat memory', async (t) => {
  const home = tempDir(t);
  const dir = tempDir(t);
  const big = join(dir, 'big.bin');
  const small = join(dir, 'small.bin');
  const chunk = Buffer.alloc(1 << 20);
  const hash = createHash('sha256');
  const fd = openSync(big, 'w');
  for (let i = 0; i < 200; i++) {
    chunk.fill(i);
    chunk.writeUInt32LE(i * 7919, 0);
    writeSync(fd, chunk);
    hash.update(chunk);
  }
  closeSync(fd);
  writeFileSync(small, 'x');
  const digests = { [big]: hash.digest('hex'), [small]: sha256('x') };
  const accel = `"${process.execPath}" --import "${join(ROOT, 'test', 'fixtures', 'report-rss.ts')}" "${MAIN}" --home "${home}"`;
  const sh = (script: string) => runCommand('bash', ['-c', script]);
  const peakMiB = (r: RunResult) => Number(/maxrss_kib=(\d+)/.exec(r.stderr)?.[1]) / 1024;

  // Each way in and out, for a 1-byte and a 200 MB blob: the peak must not grow with the size.
  const ways: Record<string, (file: string) => string> = {
    'put FILE': (f) => `${accel} store put "${f}"`,
    'put - < FILE': (f) => `${accel} store put - < "${f}"`,
    'cat FILE | put -': (f) => `cat "${f}" | ${accel} store put -`,
    'get -o': (f) => `${accel} store get ${digests[f]} -o "${f}.out" && sha256sum < "${f}.out"`,
    'get | sha256sum': (f) => `${accel} store get ${digests[f]} | sha256sum`,
  };
  for (const [way, script] of Object.entries(ways)) {
    const peaks: number[] = [];
    for (const file of [small, big]) {
      const r = await sh(script(file));
      assert.equal(ok(r).split(' ')[0], digests[file], `${way} ${file}`);
      peaks.push(peakMiB(r));
    }
    const [p1, p200] = peaks as [number, number];
    assert.ok(p200 - p1 < 32, `${way}: peak ${p1.toFixed(0)} MiB for 1 byte, ${p200.toFixed(0)} MiB for 200 MiB`);
  }
  const info = JSON.parse(ok(await runAccel(['--home', home, '--json', 'store', 'info'])));
  assert.equal(info.blobs, 2, 'the same content put three times is one blob');
  assert.equal(info.bytes, 200 * 2 ** 20 + 1);
});

test('a corrupted blob is caught: verify names it (exit 1); get fails and never writes -o', async (t) => {
  const home = tempDir(t);
  const digest = ok(await runAccel(['--home', home, 'store', 'put', '-'], { input: 'precious' })).split(
    ' ',
  )[0] as string;
  const other = ok(await runAccel(['--home', home, 'store', 'put', '-'], { input: 'other' })).split(' ')[0] as string;
  const path = join(home, 'blobs', 'sha256', digest.slice(0, 2), digest);
  writeFileSync(path, 'Precious');
  const target = join(home, 'restored');
  const get = await runAccel(['--home', home, 'store', 'get', digest, '-o', target]);
  failed(get, 1, 'ACCEL_STORE_CORRUPT');
  assert.deepEqual(
    readdirSync(home).filter((n) => n.includes('restored')),
    [],
    'no output file, not even a temp one',
  );
  // get quarantined it; corrupt another one for verify to find.
  const otherPath = join(home, 'blobs', 'sha256', other.slice(0, 2), other);
  writeFileSync(otherPath, 'OTHER');
  const verify = await runAccel(['--home', home, 'store', 'verify']);
  assert.equal(verify.code, 1);
  assert.match(verify.stdout.toString(), new RegExp(`corrupt ${other}`));
  assert.equal(readdirSync(join(home, 'quarantine')).length, 2);
  assert.equal((await runAccel(['--home', home, 'store', 'verify'])).code, 0, 'clean after quarantine');
});

test('verify --scrub runs at the lowest CPU priority, paced by --rate, and still finds corruption', async (t) => {
  const home = tempDir(t);
  const blobs = [Buffer.alloc(1 << 20, 1), Buffer.alloc(1 << 20, 2)];
  const digests = blobs.map((b) => sha256(b));
  for (const b of blobs) ok(await runAccel(['--home', home, 'store', 'put', '-'], { input: b }));
  const bad = digests[1] as string;
  const badPath = join(home, 'blobs', 'sha256', bad.slice(0, 2), bad);
  chmodSync(badPath, 0o600);
  const fd = openSync(badPath, 'r+');
  writeSync(fd, Buffer.from('rot'), 0, 3, 4096);
  closeSync(fd);
  const started = Date.now();
  const child = spawn(
    process.execPath,
    [MAIN, '--home', home, '--json', 'store', 'verify', '--scrub', '--rate', '1M'],
    {
      env: cleanEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  child.stdout.on('data', (d) => {
    stdout += d;
  });
  const code = new Promise<number | null>((resolve) => child.on('close', resolve));
  // The nice value is field 19 of /proc/<pid>/stat (after the parenthesised command name).
  const nice = await until('the scrub has lowered its priority', () => {
    const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
    const value = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
    return value === 19 ? value : undefined;
  });
  assert.equal(nice, 19);
  assert.equal(await code, 1, 'exit 1: something was corrupt');
  const elapsed = Date.now() - started;
  assert.ok(elapsed >= 1500, `2 MiB at 1 MiB/s takes about 2 s, took ${elapsed} ms`);
  const result = JSON.parse(stdout) as { corrupt: { digest: string }[]; checked: number };
  assert.deepEqual(
    result.corrupt.map((c) => c.digest),
    [bad],
  );
  assert.equal(result.checked, 2);
  failed(await runAccel(['--home', home, 'store', 'verify', '--rate', 'fast']), 2, 'ACCEL_USAGE_BAD_SIZE');
});

test('a large corrupted blob sent to stdout ends with exit 1 and says to discard the output', async (t) => {
  const home = tempDir(t);
  const big = Buffer.alloc(20 * 1024 * 1024, 7);
  const digest = ok(await runAccel(['--home', home, 'store', 'put', '-'], { input: big })).split(' ')[0] as string;
  const path = join(home, 'blobs', 'sha256', digest.slice(0, 2), digest);
  const bad = Buffer.from(big);
  bad[bad.length - 1] = 8;
  writeFileSync(path, bad);
  const r = await runAccel(['--home', home, 'store', 'get', digest]);
  failed(r, 1, 'ACCEL_STORE_CORRUPT');
  assert.match(r.stderr, /discard/);
});

test('gc --max-size evicts down to the budget, keeps pinned blobs, and prints what it freed', async (t) => {
  const home = tempDir(t);
  const pinned = ok(await runAccel(['--home', home, 'store', 'put', '--pin', '-'], { input: Buffer.alloc(3000, 1) }));
  for (let i = 2; i < 6; i++)
    ok(await runAccel(['--home', home, 'store', 'put', '-'], { input: Buffer.alloc(3000, i) }));
  const r = JSON.parse(ok(await runAccel(['--home', home, '--json', 'store', 'gc', '--max-size', '7K'])));
  assert.ok(r.after.bytes <= 7 * 1024);
  assert.equal(r.freed.blobs, 3);
  ok(await runAccel(['--home', home, 'store', 'stat', pinned.split(' ')[0] as string]));
  // Without --max-size the budget comes from ACCEL_STORE_MAX_SIZE, then config.json.
  writeFileSync(join(home, 'config.json'), JSON.stringify({ store: { maxSize: '1K' } }));
  const text = ok(await runAccel(['--home', home, 'store', 'gc']));
  assert.match(text, /freed 1 blobs/);
  const env = ok(await runAccel(['--home', home, 'store', 'gc'], { env: { ACCEL_STORE_MAX_SIZE: '0' } }));
  assert.match(env, /freed 0 blobs.*\n.*1 blobs/);
});

test('unknown subcommands, options, digests and config keys are usage errors (exit 2)', async (t) => {
  const home = tempDir(t);
  const top = await runAccel(['--home', home, 'frobnicate']);
  assert.equal(top.code, 2);
  assert.match(top.stderr, /unknown command 'frobnicate'/);
  assert.equal((await runAccel(['--home', home, 'store', 'frobnicate'])).code, 2);
  assert.equal((await runAccel(['--home', home, 'store', 'put', '--bogus', '-'])).code, 2);
  failed(await runAccel(['--home', home, 'store', 'get', 'not-a-digest']), 2, 'ACCEL_STORE_BAD_DIGEST');
  failed(await runAccel(['--home', home, 'store', 'gc', '--max-size', 'huge']), 2, 'ACCEL_USAGE_BAD_SIZE');
  writeFileSync(join(home, 'config.json'), JSON.stringify({ store: { maxSize: '1G', colour: 'red' } }));
  const cfg = await runAccel(['--home', home, 'store', 'info']);
  failed(cfg, 2, 'ACCEL_CONFIG_UNKNOWN_KEY');
  assert.match(cfg.stderr, /store\.colour/);
});

test('--version and --help exit 0; --help shows examples', async () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  assert.equal(ok(await runAccel(['--version'])).trim(), pkg.version);
  assert.match(ok(await runAccel(['--help'])), /Examples:[\s\S]*accel store put/);
  assert.match(ok(await runAccel(['store', '--help'])), /gc \[options\]/);
});

test('missing, unreadable or non-regular inputs and unknown digests fail with nothing stored', async (t) => {
  const home = tempDir(t);
  failed(await runAccel(['--home', home, 'store', 'put', join(home, 'nope')]), 1, 'ACCEL_FS_NOT_FOUND');
  failed(await runAccel(['--home', home, 'store', 'put', home]), 1, 'ACCEL_STORE_NOT_A_FILE');
  const unknown = sha256('never stored');
  const target = join(home, 'keep.txt');
  writeFileSync(target, 'old content');
  failed(await runAccel(['--home', home, 'store', 'get', unknown, '-o', target]), 1, 'ACCEL_STORE_UNKNOWN_DIGEST');
  assert.equal(readFileSync(target, 'utf8'), 'old content', 'the output file is untouched');
  failed(await runAccel(['--home', home, 'store', 'stat', unknown]), 1, 'ACCEL_STORE_UNKNOWN_DIGEST');
  const info = JSON.parse(ok(await runAccel(['--home', home, '--json', 'store', 'info'])));
  assert.equal(info.blobs, 0);
  assert.deepEqual(readdirSync(join(home, 'tmp')), []);
});

test('an ACCEL_HOME inside a regular file is reported, not a crash', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'file'), '');
  const r = await runAccel(['store', 'info'], { env: { ACCEL_HOME: join(dir, 'file', 'home') } });
  failed(r, 1, 'ACCEL_STORE_NOT_WRITABLE');
  assert.match(r.stderr, /hint: set ACCEL_HOME/);
  mkdirSync(join(dir, 'ok'));
  ok(await runAccel(['store', 'info'], { env: { ACCEL_HOME: join(dir, 'ok') } }));
});

test('put --expect stores only content with that digest', async (t) => {
  const home = tempDir(t);
  const wrong = sha256('something else');
  const r = await runAccel(['--home', home, 'store', 'put', '--expect', wrong, '-'], { input: 'payload' });
  failed(r, 1, 'ACCEL_STORE_DIGEST_MISMATCH');
  assert.equal(JSON.parse(ok(await runAccel(['--home', home, '--json', 'store', 'info']))).blobs, 0);
  const right = ok(
    await runAccel(['--home', home, 'store', 'put', '--expect', `sha256:${sha256('payload')}`, '-'], {
      input: 'payload',
    }),
  );
  assert.equal(right.split(' ')[0], sha256('payload'));
});

test('warnings go to stderr and -q silences them; stdout carries only data', async (t) => {
  const home = tempDir(t);
  const env = { ACCEL_STORE_MAXSIZE: '1G' };
  const loud = await runAccel(['--home', home, 'store', 'put', '-'], { input: 'x', env });
  assert.match(loud.stderr, /warning: ignoring unknown environment variable ACCEL_STORE_MAXSIZE/);
  assert.equal(ok(loud), `${sha256('x')}  -\n`);
  const quiet = await runAccel(['--home', home, '-q', 'store', 'put', '-'], { input: 'x', env });
  assert.equal(quiet.stderr, '');
  const both = await runAccel(['--home', home, '-q', '-v', 'store', 'info']);
  failed(both, 2, 'ACCEL_USAGE_CONFLICT');
});

/** Modes of everything under a store home (its own paths only), as 'path: mode' lines. */
function storeModes(home: string, digest: string): Record<string, string> {
  const mode = (p: string) => (statSync(join(home, p)).mode & 0o7777).toString(8).padStart(4, '0');
  const paths = ['.', 'blobs', 'blobs/sha256', `blobs/sha256/${digest.slice(0, 2)}`, 'tmp', 'quarantine'];
  const files = ['index.db', `blobs/sha256/${digest.slice(0, 2)}/${digest}`];
  return Object.fromEntries([...paths, ...files].map((p) => [p, mode(p)]));
}

/** Stores a blob, and corrupts another so that verify quarantines it (the quarantine directory exists). */
async function populate(home: string, env: Record<string, string>, wrapper?: string[]): Promise<string> {
  const put = await runAccel(['--home', home, 'store', 'put', '-'], { input: 'secret url list', env, wrapper });
  ok(put);
  const digest = put.stdout.toString().split(' ')[0] as string;
  const bad = (await runAccel(['--home', home, 'store', 'put', '-'], { input: 'will rot', env, wrapper })).stdout;
  const badDigest = bad.toString().split(' ')[0] as string;
  const badPath = join(home, 'blobs', 'sha256', badDigest.slice(0, 2), badDigest);
  chmodSync(badPath, 0o600);
  writeFileSync(badPath, 'will ROT');
  assert.equal((await runAccel(['--home', home, 'store', 'verify'], { env, wrapper })).code, 1, 'quarantined');
  return digest;
}

test('the store is private to its user by default, group-shared only when configured', async (t) => {
  const dir = tempDir(t);
  chmodSync(dir, 0o755);
  const home = join(dir, 'private');
  // A permissive umask must not loosen the store (-wal and -shm: test/unit/store.test.ts, they live while open).
  const loose = ['bash', '-c', 'umask 000 && exec "$@"', 'loose'];
  const digest = await populate(home, {}, loose);
  assert.deepEqual(storeModes(home, digest), expectedModes(digest, { dir: '0700', index: '0600', blob: '0400' }));
  // Another local user can neither list the store nor read its index.
  if (process.getuid?.() === 0) {
    const peek = await runCommand('cat', [join(home, 'index.db')], { user: NOBODY });
    assert.notEqual(peek.code, 0, 'nobody cannot read the index');
    assert.match(peek.stderr, /Permission denied/);
  }
  // A store made by an older accel (0755, 0644) is brought to the private modes when opened.
  chmodSync(home, 0o755);
  chmodSync(join(home, 'index.db'), 0o644);
  chmodSync(join(home, 'tmp'), 0o755);
  ok(await runAccel(['--home', home, 'store', 'info']));
  assert.equal(statSync(home).mode & 0o7777, 0o700);
  assert.equal(statSync(join(home, 'index.db')).mode & 0o7777, 0o600);
  assert.equal(statSync(join(home, 'tmp')).mode & 0o7777, 0o700);

  // Shared: a strict umask must not lock the group out.
  const team = join(dir, 'team');
  const strict = ['bash', '-c', 'umask 077 && exec "$@"', 'strict'];
  const shared = await populate(team, { ACCEL_STORE_SHARED: '1' }, strict);
  assert.deepEqual(storeModes(team, shared), expectedModes(shared, { dir: '2770', index: '0660', blob: '0440' }));
});

/** The mode of every path of a store holding one blob, as storeModes() lists them. */
function expectedModes(digest: string, modes: { dir: string; index: string; blob: string }): Record<string, string> {
  const shard = `blobs/sha256/${digest.slice(0, 2)}`;
  const dirs = ['.', 'blobs', 'blobs/sha256', shard, 'tmp', 'quarantine'];
  return {
    ...Object.fromEntries(dirs.map((d) => [d, modes.dir])),
    'index.db': modes.index,
    [`${shard}/${digest}`]: modes.blob,
  };
}
