import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Store } from '../../src/store/store.ts';
import { sha256, tempDir } from '../helpers.ts';

const KB = 1024;

function clockedStore(t: import('node:test').TestContext) {
  let now = 1_000_000;
  const store = Store.open({ home: tempDir(t), now: () => now });
  t.after(() => store.close());
  return { store, tick: (ms = 120_000) => (now += ms) };
}

test('gc evicts least recently used first, keeps pinned blobs, and ends within the budget', async (t) => {
  const { store, tick } = clockedStore(t);
  const blobs = [];
  for (let i = 0; i < 6; i++) {
    blobs.push(await store.putBuffer(Buffer.alloc(10 * KB, i), { pin: i === 0 }));
    tick();
  }
  // Reading blob 1 makes it the most recently used.
  store.read(blobs[1]?.digest as never);
  tick();
  store.refs.set('cc', 'points-at-2', blobs[2]?.digest as never);

  const r = store.gc(35 * KB);
  assert.equal(r.before.bytes, 60 * KB);
  assert.ok(r.after.bytes <= 35 * KB, `after ${r.after.bytes}`);
  assert.equal(r.freed.blobs, 3);
  const kept = blobs.filter((b) => store.has(b.digest)).map((b) => b.digest);
  assert.deepEqual(
    kept,
    [blobs[0], blobs[1], blobs[5]].map((b) => b?.digest),
  );
  assert.equal(store.refs.get('cc', 'points-at-2'), undefined, 'refs to evicted blobs go with them');
  assert.equal(store.info().bytes, r.after.bytes);
});

test('gc with a budget below the pinned total evicts all else and says it is over budget', async (t) => {
  const { store } = clockedStore(t);
  const pinned = await store.putBuffer(Buffer.alloc(4 * KB, 1), { pin: true });
  await store.putBuffer(Buffer.alloc(4 * KB, 2));
  const r = store.gc(1 * KB);
  assert.equal(r.overBudget, true);
  assert.equal(r.after.blobs, 1);
  assert.ok(store.has(pinned.digest));
  assert.equal(store.setPinned(pinned.digest, false), true);
  assert.equal(store.gc(1 * KB).after.blobs, 0);
});

test('a blob being read when gc evicts it is still read to the end, with the right bytes', async (t) => {
  const { store } = clockedStore(t);
  const content = Buffer.alloc(8 * 1024 * KB);
  for (let i = 0; i < content.length; i += 4096) content.writeUInt32LE(i, i);
  const { digest } = await store.putBuffer(content);
  const reader = await store.open(digest);
  assert.ok(reader);
  const chunks: Buffer[] = [];
  let evicted = false;
  for await (const chunk of reader.stream) {
    chunks.push(chunk as Buffer);
    if (!evicted) {
      assert.equal(store.gc(0).freed.blobs, 1);
      evicted = true;
    }
  }
  assert.equal(sha256(Buffer.concat(chunks)), digest);
  assert.equal(await store.open(digest), undefined, 'after gc the blob is a miss');
});
