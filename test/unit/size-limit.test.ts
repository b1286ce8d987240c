import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { createLog } from '../../src/core/log.ts';
import type { Digest } from '../../src/store/digest.ts';
import { takeFileLock } from '../../src/store/lock.ts';
import { Store } from '../../src/store/store.ts';
import { tempDir, until } from '../helpers.ts';

const KB = 1024;

function clockedStore(t: import('node:test').TestContext, home = tempDir(t)) {
  let now = 1_000_000;
  const warnings: string[] = [];
  const log = createLog('normal', (line) => {
    if (line.includes('warning: ')) warnings.push(line);
  });
  const store = Store.open({ home, now: () => now, log });
  t.after(() => store.close());
  return { store, home, warnings, tick: (ms = 120_000) => (now += ms) };
}

/** What the index's totals row says must equal a full count of the blobs table. */
function assertTotalsTrue(store: Store, home: string): void {
  const db = new Database(join(home, 'index.db'), { readonly: true });
  try {
    const full = db
      .prepare(
        'SELECT count(*) AS blobs, coalesce(sum(size), 0) AS bytes, coalesce(sum(size * pinned), 0) AS p FROM blobs',
      )
      .get() as { blobs: number; bytes: number; p: number };
    assert.deepEqual(store.totals(), { blobs: full.blobs, bytes: full.bytes, pinnedBytes: full.p });
  } finally {
    db.close();
  }
}

function blobFiles(home: string): number {
  const root = join(home, 'blobs', 'sha256');
  return readdirSync(root).reduce((n, shard) => n + readdirSync(join(root, shard)).length, 0);
}

test('a size-limited store never holds more than its limit, evicting least recently used blobs', async (t) => {
  const { store, home, tick } = clockedStore(t);
  const limit = store.limitSize({ maxBytes: 100 * KB, highWater: 0.9, lowWater: 0.6 });
  t.after(() => limit.close());
  const first = await store.putBuffer(Buffer.alloc(10 * KB, 255));
  let max = 0;
  for (let i = 0; i < 60; i++) {
    tick();
    // The first blob is read all the time: it stays.
    assert.ok(store.read(first.digest), `first blob read at ${i}`);
    tick();
    await store.putBuffer(Buffer.alloc(10 * KB, i));
    max = Math.max(max, store.totals().bytes);
    assert.ok(store.totals().bytes <= 100 * KB, `after put ${i}: ${store.totals().bytes}`);
  }
  // The background gc unlinks off the main thread: its counters and the files follow the rows.
  await until(
    'the background gc',
    () =>
      limit.status().bytes <= 60 * KB && limit.status().evictedBlobs >= 50 && blobFiles(home) === store.totals().blobs,
  );
  assert.ok(max > 80 * KB, `the store filled up to the high-water mark (${max})`);
  assert.ok(store.has(first.digest), 'the blob read all along survives');
  const s = limit.status();
  assert.ok(s.evictedBlobs >= 50, `evicted ${s.evictedBlobs}`);
  assert.ok(s.gcRuns >= 1);
  assert.equal(s.overByKept, false);
  assertTotalsTrue(store, home);
});

test('held and pinned blobs are never evicted; a store over its limit by them says so once', async (t) => {
  const { store, home, warnings, tick } = clockedStore(t);
  const pinned = await store.putBuffer(Buffer.alloc(30 * KB, 1), { pin: true });
  const held = await store.putBuffer(Buffer.alloc(30 * KB, 2));
  store.hold('apt-epoch/debian/bookworm/x', [held.digest]);
  tick();
  const limit = store.limitSize({ maxBytes: 50 * KB });
  t.after(() => limit.close());
  for (let i = 0; i < 5; i++) {
    tick();
    await store.putBuffer(Buffer.alloc(4 * KB, 10 + i));
  }
  // Only the pinned and held blobs are left.
  await until('the background gc', () => limit.status().overByKept && store.totals().bytes === 60 * KB);
  assert.ok(store.has(pinned.digest) && store.has(held.digest));
  tick();
  await store.putBuffer(Buffer.alloc(4 * KB, 99));
  limit.written();
  await until('the background gc', () => limit.status().gcRuns >= 2);
  assert.equal(warnings.length, 1, warnings.join(''));
  assert.match(warnings[0] ?? '', /over its limit .* 30.0 KiB pinned, 30.0 KiB held/);
  store.release('apt-epoch/debian/bookworm/x');
  store.setPinned(pinned.digest, false);
  limit.written();
  await until('the background gc', () => store.totals().bytes <= 50 * KB);
  assert.equal(limit.status().overByKept, false);
  assertTotalsTrue(store, home);
});

test('holds of a process that is gone are dropped by the next gc; a live one’s stay', async (t) => {
  const { store, tick } = clockedStore(t);
  const dead = spawnSync('true');
  const a = await store.putBuffer(Buffer.alloc(8 * KB, 1));
  const b = await store.putBuffer(Buffer.alloc(8 * KB, 2));
  tick();
  const db = new Database(join(store.home, 'index.db'));
  db.prepare('INSERT INTO holds (owner, digest) VALUES (?, ?)').run(`proc:${dead.pid}:job:1`, a.digest);
  db.close();
  store.hold(store.processHold('job:2'), [b.digest]);
  const r = store.gc(0);
  assert.equal(r.freed.blobs, 1);
  assert.ok(!store.has(a.digest), 'the dead process’s hold went');
  assert.ok(store.has(b.digest), 'this process’s hold stays');
});

test('one gc at a time: a server finding the gc lock taken leaves the store to its holder', async (t) => {
  const { store, tick } = clockedStore(t);
  for (let i = 0; i < 10; i++) {
    tick();
    await store.putBuffer(Buffer.alloc(10 * KB, i));
  }
  mkdirSync(join(store.home, 'run'), { recursive: true });
  const lock = takeFileLock(join(store.home, 'run', 'gc.lock'), store.home, 0);
  assert.ok(lock, 'the lock is free');
  assert.equal(takeFileLock(join(store.home, 'run', 'gc.lock'), store.home, 0), undefined, 'and exclusive');
  const limit = store.limitSize({ maxBytes: 50 * KB });
  t.after(() => limit.close());
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(limit.status().evictedBlobs, 0, 'nothing evicted while another holds the lock');
  assert.equal(store.totals().bytes, 100 * KB);
  lock.release();
  limit.written();
  await until('the background gc', () => limit.status().evictedBlobs >= 6);
  assert.ok(store.totals().bytes <= 0.85 * 50 * KB);
});

test('an eviction cut short by a crash (rows gone, files left) is finished by the next gc', async (t) => {
  const { store, home } = clockedStore(t);
  const kept = await store.putBuffer(Buffer.alloc(4 * KB, 1));
  const lost = await store.putBuffer(Buffer.alloc(4 * KB, 2));
  // What a gc killed between its transaction and its unlinks leaves: a journal row, no blob row, the file.
  const db = new Database(join(home, 'index.db'));
  db.prepare('DELETE FROM blobs WHERE digest = ?').run(lost.digest);
  db.prepare('INSERT INTO evicting (digest) VALUES (?), (?)').run(lost.digest, kept.digest);
  db.close();
  const path = (d: Digest) => join(home, 'blobs', 'sha256', d.slice(0, 2), d);
  assert.ok(existsSync(path(lost.digest)));
  store.gc(1024 * KB);
  assert.ok(!existsSync(path(lost.digest)), 'the orphaned file is gone');
  assert.ok(existsSync(path(kept.digest)), 'a journaled blob put again since keeps its file');
  const journal = () => {
    const view = new Database(join(home, 'index.db'), { readonly: true });
    try {
      return view.prepare('SELECT count(*) FROM evicting').pluck().get();
    } finally {
      view.close();
    }
  };
  assert.equal(journal(), 0, 'the journal is empty, the put-again blob’s entry too');
  assertTotalsTrue(store, home);
  // The same left for verify, which finishes it before it reconciles files and rows.
  const again = new Database(join(home, 'index.db'));
  again.prepare('INSERT INTO evicting (digest) VALUES (?)').run(kept.digest);
  again.close();
  const verified = await store.verify();
  assert.deepEqual([verified.missing, verified.adopted, verified.corrupt], [[], [], []]);
  assert.equal(journal(), 0);
  assert.ok(existsSync(path(kept.digest)));
});

test('the totals row follows puts, re-puts, pins, quarantines and verify', async (t) => {
  const { store, home, tick } = clockedStore(t);
  const a = await store.putBuffer(Buffer.alloc(3 * KB, 1));
  await store.putBuffer(Buffer.alloc(3 * KB, 1));
  await store.putBuffer(Buffer.alloc(5 * KB, 2), { pin: true });
  tick();
  store.setPinned(a.digest, true);
  store.setPinned(a.digest, false);
  store.quarantine(a.digest);
  await store.putBuffer(Buffer.alloc(7 * KB, 3));
  await store.verify();
  assertTotalsTrue(store, home);
  assert.deepEqual(store.totals(), { blobs: 2, bytes: 12 * KB, pinnedBytes: 5 * KB });
});

test('a large blob admitted into a store full of small ones evicts as many of them as it takes', async (t) => {
  const { store, tick } = clockedStore(t);
  const limit = store.limitSize({ maxBytes: 100 * KB, highWater: 1, lowWater: 1 });
  t.after(() => limit.close());
  for (let i = 0; i < 380; i++) await store.putBuffer(Buffer.from(`${i}`.padEnd(256, '.')));
  assert.equal(store.totals().bytes, 95 * KB);
  tick();
  const big = await store.putBuffer(Buffer.alloc(60 * KB, 7));
  assert.ok(store.has(big.digest));
  assert.ok(store.totals().bytes <= 100 * KB, `${store.totals().bytes}`);
  assert.ok(limit.status().evictedBlobs > 128, 'more than one batch went');
});
