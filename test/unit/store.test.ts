import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, openSync, readdirSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { AccelError } from '../../src/core/errors.ts';
import type { Digest } from '../../src/store/digest.ts';
import { blobPath } from '../../src/store/layout.ts';
import { Store } from '../../src/store/store.ts';
import { listFiles, sha256, tempDir } from '../helpers.ts';

function openTemp(t: import('node:test').TestContext, now?: () => number): Store {
  const store = Store.open({ home: tempDir(t), now });
  t.after(() => store.close());
  return store;
}

test('buffer, stream and file puts round-trip, including empty and 1-byte content', async (t) => {
  const store = openTemp(t);
  for (const content of [Buffer.alloc(0), Buffer.from('x'), Buffer.from('hello world\n')]) {
    const a = await store.putBuffer(content);
    assert.equal(a.digest, sha256(content));
    assert.equal(a.size, content.length);
    const b = await store.putStream(Readable.from([content]));
    assert.equal(b.digest, a.digest);
    const file = join(store.home, 'input');
    writeFileSync(file, content);
    assert.equal((await store.putFile(file)).digest, a.digest);
    assert.deepEqual(store.read(a.digest), content);
  }
  assert.equal(store.info().blobs, 3, 'the same content stored three ways is one blob');
  assert.deepEqual(readdirSync(store.layout.tmp), [], 'no temp files left behind');
});

test('blobs are read-only files at blobs/sha256/<2 hex>/<digest>', async (t) => {
  const store = openTemp(t);
  const { digest } = await store.putBuffer(Buffer.from('abc'));
  const path = blobPath(store.layout, digest);
  assert.equal(path, join(store.home, 'blobs', 'sha256', digest.slice(0, 2), digest));
  assert.deepEqual(listFiles(join(store.home, 'blobs')), [join('sha256', digest.slice(0, 2), digest)]);
  assert.equal(statSync(path).mode & 0o777, 0o400, 'owner read-only: the store is private by default');
});

test('the index and its -wal and -shm are private while the store is open, whatever the umask', async (t) => {
  const home = tempDir(t);
  const old = process.umask(0);
  let store: Store;
  try {
    store = Store.open({ home });
  } finally {
    process.umask(old);
  }
  t.after(() => store.close());
  await store.putBuffer(Buffer.from('names a URL'));
  for (const file of ['index.db', 'index.db-wal', 'index.db-shm']) {
    assert.equal(statSync(join(home, file)).mode & 0o7777, 0o600, file);
  }
});

test('an expected digest that does not match stores nothing', async (t) => {
  const store = openTemp(t);
  const wrong = sha256('other') as Digest;
  for (const put of [
    () => store.putBuffer(Buffer.from('data'), { expected: wrong }),
    () => store.putStream(Readable.from([Buffer.from('data')]), { expected: wrong }),
  ]) {
    await assert.rejects(put, (e: unknown) => e instanceof AccelError && e.code === 'ACCEL_STORE_DIGEST_MISMATCH');
  }
  assert.equal(store.info().blobs, 0);
  assert.deepEqual(listFiles(store.layout.blobs), []);
  assert.deepEqual(readdirSync(store.layout.tmp), []);
});

test('refs: set, get, overwrite, list by namespace, delete; a ref to a missing blob is a miss', async (t) => {
  const store = openTemp(t);
  const a = await store.putBuffer(Buffer.from('a'));
  const b = await store.putBuffer(Buffer.from('b'));
  store.refs.set('url', 'https://example.invalid/a.tar.gz', a.digest, { etag: '"1"' });
  store.refs.set('cc', 'k1', b.digest);
  store.refs.set('url', 'https://example.invalid/a.tar.gz', b.digest, { etag: '"2"' });
  const ref = store.refs.get('url', 'https://example.invalid/a.tar.gz');
  assert.equal(ref?.digest, b.digest);
  assert.deepEqual(ref?.meta, { etag: '"2"' });
  assert.deepEqual(
    [...store.refs.list('url')].map((r) => r.key),
    ['https://example.invalid/a.tar.gz'],
  );
  assert.equal([...store.refs.list()].length, 2);
  assert.throws(() => store.refs.set('Bad NS', 'k', a.digest), /not a ref namespace/);

  // Someone removed the file behind the store's back: the read is a miss and the stale row goes away.
  chmodSync(join(blobPath(store.layout, b.digest), '..'), 0o755);
  const { rmSync } = await import('node:fs');
  rmSync(blobPath(store.layout, b.digest));
  assert.equal(await store.open(store.refs.get('cc', 'k1')?.digest as Digest), undefined);
  assert.equal(store.has(b.digest), false);
  assert.equal(store.refs.delete('cc', 'k1'), true);
  assert.equal(store.refs.get('cc', 'k1'), undefined);
});

test('reading a corrupted blob fails at the end, quarantines it, and never returns the bad bytes', async (t) => {
  const store = openTemp(t);
  const { digest } = await store.putBuffer(Buffer.from('good content'));
  const path = blobPath(store.layout, digest);
  chmodSync(path, 0o644);
  writeFileSync(path, 'evil content');
  await assert.rejects(
    async () => store.read(digest),
    (e: unknown) => e instanceof AccelError && e.code === 'ACCEL_STORE_CORRUPT' && e.message.includes(digest),
  );
  assert.equal(existsSync(path), false, 'moved out of the content address');
  assert.equal(readdirSync(store.layout.quarantine).length, 1);
  assert.equal(store.has(digest), false);
  // Putting the good content again restores it.
  await store.putBuffer(Buffer.from('good content'));
  assert.deepEqual(store.read(digest), Buffer.from('good content'));
});

test('a truncated file at a blob path is replaced by a put of the real content', async (t) => {
  const store = openTemp(t);
  const content = Buffer.from('the real content');
  const digest = sha256(content) as Digest;
  const path = blobPath(store.layout, digest);
  const { mkdirSync } = await import('node:fs');
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, 'the real');
  await store.putStream(Readable.from([content]));
  assert.deepEqual(store.read(digest), content);
});

test('verify reports corrupt and missing blobs and adopts complete files without a row', async (t) => {
  const store = openTemp(t);
  const good = await store.putBuffer(Buffer.from('good'));
  const bad = await store.putBuffer(Buffer.from('bad'));
  const gone = await store.putBuffer(Buffer.from('gone'));
  chmodSync(blobPath(store.layout, bad.digest), 0o644);
  writeFileSync(blobPath(store.layout, bad.digest), 'BAD');
  const { rmSync, mkdirSync } = await import('node:fs');
  rmSync(blobPath(store.layout, gone.digest));
  const orphan = Buffer.from('orphan');
  const orphanPath = blobPath(store.layout, sha256(orphan) as Digest);
  mkdirSync(join(orphanPath, '..'), { recursive: true });
  writeFileSync(orphanPath, orphan);

  const r = await store.verify();
  assert.deepEqual(
    r.corrupt.map((c) => c.digest),
    [bad.digest],
  );
  assert.deepEqual(r.missing, [gone.digest]);
  assert.deepEqual(r.adopted, [sha256(orphan)]);
  assert.equal(r.checked, 4);
  assert.ok(store.has(good.digest));
  assert.ok(store.has(sha256(orphan) as Digest));
  assert.equal(store.has(bad.digest), false);
  const again = await store.verify();
  assert.equal(again.corrupt.length + again.missing.length, 0, 'a second verify finds nothing');
});

test('the start-up sweep keeps temp files of live processes, whatever their prefix, and removes the dead ones', async (t) => {
  const { tempName } = await import('../../src/core/atomic-fs.ts');
  const store = openTemp(t);
  const { sweepTmp } = await import('../../src/store/sweep.ts');
  const mine = join(store.layout.tmp, tempName('dep.'));
  const dead = join(store.layout.tmp, 'dep.999999999-0123456789ab');
  writeFileSync(mine, 'x');
  writeFileSync(dead, 'x');
  sweepTmp(store.layout.tmp, Date.now());
  assert.deepEqual(readdirSync(store.layout.tmp), [mine.split('/').pop()]);
});

test('putting the right bytes again repairs a blob corrupted in place with the same size', async (t) => {
  const store = Store.open({ home: tempDir(t) });
  t.after(() => store.close());
  for (const [how, size] of [
    ['buffer', 40_000],
    ['stream', 3 << 20],
  ] as const) {
    const data = randomBytes(size);
    const { digest } = await store.putBuffer(data);
    const path = corruptInPlace(store, digest, 1000, 16);
    assert.throws(() => store.read(digest), /corrupt/, `${how}: the corruption is seen`);
    // read() quarantined it; put it back corrupt to model a copy nobody has read yet.
    writeFileSync(path, Buffer.concat([data.subarray(0, 1000), Buffer.alloc(16, 0x58), data.subarray(1016)]));
    await store.putBuffer(Buffer.from('unrelated'));
    if (how === 'buffer') await store.putBuffer(data);
    else await store.putStream(Readable.from([data]));
    assert.deepEqual(store.read(digest), data, `${how}: repaired by the put`);
  }
});

test('every kind of put repairs a blob corrupted in place that nobody has read (its index row intact)', async (t) => {
  const store = openTemp(t);
  const dir = tempDir(t);
  const puts: [string, (data: Buffer) => Promise<unknown>][] = [
    ['buffer', (data) => store.putBuffer(data)],
    ['stream', (data) => store.putStream(Readable.from([data]))],
    [
      'file',
      (data) => {
        const file = join(dir, 'input');
        writeFileSync(file, data);
        return store.putFile(file);
      },
    ],
    [
      'writer',
      async (data) => {
        const writer = await store.createWriter();
        await writer.write(data);
        return writer.commit();
      },
    ],
  ];
  for (const [how, put] of puts) {
    const data = randomBytes(200_000);
    const { digest } = await store.putBuffer(data);
    const path = corruptInPlace(store, digest, 5000, 8);
    assert.ok(store.has(digest), `${how}: the index still lists it`);
    await put(data);
    assert.deepEqual(store.read(digest), data, `${how}: repaired by the put`);
    assert.equal(statSync(path).mode & 0o777, 0o400, `${how}: still read-only`);
  }
  assert.deepEqual(readdirSync(store.layout.tmp), []);
});

/** Overwrites `length` bytes of a stored blob at `offset`, keeping its size and mode; returns its path. */
function corruptInPlace(store: Store, digest: Digest, offset: number, length: number): string {
  const path = blobPath(store.layout, digest);
  const mode = statSync(path).mode & 0o777;
  chmodSync(path, 0o600);
  const fd = openSync(path, 'r+');
  writeSync(fd, Buffer.alloc(length, 0x58), 0, length, offset);
  closeSync(fd);
  chmodSync(path, mode);
  return path;
}
