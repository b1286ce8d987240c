import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { blobPath } from '../../src/store/layout.ts';
import { Store } from '../../src/store/store.ts';
import { listFiles, ROOT, runCommand, sha256, tempDir } from '../helpers.ts';

const WORKERS = 8;
const ROUNDS = 40;

test('8 processes putting and reading the same and different blobs leave a consistent index', async (t) => {
  const home = tempDir(t);
  const worker = join(ROOT, 'test', 'fixtures', 'store-worker.ts');
  // Every worker starts on a store that does not exist yet, so they also race to create and migrate it.
  const results = await Promise.all(
    Array.from({ length: WORKERS }, (_, id) =>
      runCommand(process.execPath, [worker, home, String(id), String(ROUNDS)]),
    ),
  );
  for (const r of results) {
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /SQLITE_BUSY|database is locked/);
    assert.equal(JSON.parse(r.stdout.toString()).reads, ROUNDS * 3);
  }

  const store = Store.open({ home });
  t.after(() => store.close());
  const info = store.info();
  assert.equal(info.blobs, ROUNDS + WORKERS * ROUNDS, 'shared content is one blob, own content one per worker');
  assert.equal(info.refs, ROUNDS + WORKERS * ROUNDS);
  const files = listFiles(store.layout.blobs);
  assert.equal(files.length, info.blobs, 'one file per index row');
  let bytes = 0;
  for (const ref of store.refs.list('test')) {
    const path = blobPath(store.layout, ref.digest);
    assert.ok(existsSync(path), `ref ${ref.key} points at an existing file`);
  }
  for (const file of files) {
    const digest = file.split('/').pop() as string;
    const stat = store.stat(digest as never);
    assert.ok(stat, `file ${file} has a row`);
    assert.equal(statSync(join(store.layout.blobs, file)).size, stat.size);
    bytes += stat.size;
  }
  assert.equal(bytes, info.bytes);
  assert.deepEqual(readdirSync(store.layout.tmp), []);
  const verify = await store.verify();
  assert.equal(verify.corrupt.length + verify.missing.length + verify.adopted.length, 0);
  assert.equal(store.refs.get('test', 'shared-0')?.digest, sha256(Buffer.from('shared blob 0\n'.repeat(200))));
});

test('32 processes opening a store that does not exist yet all open it (the switch to WAL is retried, not fatal)', async (t) => {
  const opener = join(ROOT, 'test', 'fixtures', 'store-open.ts');
  for (let round = 0; round < 3; round++) {
    const home = tempDir(t);
    const results = await Promise.all(Array.from({ length: 32 }, () => runCommand(process.execPath, [opener, home])));
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    const store = Store.open({ home });
    assert.equal(store.info().blobs, 0);
    store.close();
  }
});
