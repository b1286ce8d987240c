import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { AccelError } from '../../src/core/errors.ts';
import { importDirectory } from '../../src/mirror/import.ts';
import { URL_NS, type UrlMeta } from '../../src/mirror/url-ref.ts';
import { parseUrlList, type WantedFile } from '../../src/mirror/wanted.ts';
import type { Digest } from '../../src/store/digest.ts';
import { Store } from '../../src/store/store.ts';
import { sha256, tempDir } from '../helpers.ts';

const NOW = 1_700_000_000_000;

function openTemp(t: TestContext): Store {
  const store = Store.open({ home: tempDir(t) });
  t.after(() => store.close());
  return store;
}

/** Writes `content` as a Bazel repository cache entry under `root` (named by `hex`, its hash unless told). */
function cacheEntry(root: string, content: string, hex = sha256(content)): string {
  const dir = join(root, 'content_addressable', 'sha256', hex);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'file'), content);
  return join(dir, 'file');
}

function refOf(store: Store, url: string): { digest: string; meta: UrlMeta } | undefined {
  const ref = store.refs.get(URL_NS, url);
  return ref && { digest: ref.digest, meta: ref.meta as UrlMeta };
}

test('a repository cache is imported verified; wanted URLs with that sha256 get immutable refs', async (t) => {
  const store = openTemp(t);
  const cache = tempDir(t);
  const zlib = cacheEntry(cache, 'zlib source');
  const other = cacheEntry(cache, 'not wanted');
  const liar = sha256('what the folder claims');
  const corrupt = cacheEntry(cache, 'bit rot', liar);
  writeFileSync(join(cache, 'content_addressable', 'sha256', 'README'), 'not an entry');
  const wanted: WantedFile[] = [
    {
      urls: ['https://example.invalid/zlib.tar.gz', 'https://github.com/madler/zlib/archive/v1.tar.gz'],
      sha256: sha256('zlib source') as Digest,
      source: 'WORKSPACE:3',
    },
    { urls: ['https://example.invalid/claimed.tar.gz'], sha256: liar as Digest, source: 'WORKSPACE:9' },
  ];

  for (const dir of [cache, join(cache, 'content_addressable'), join(cache, 'content_addressable', 'sha256')]) {
    const result = await importDirectory(store, dir, { wanted, now: () => NOW });
    assert.deepEqual(
      [...result.imported].sort((a, b) => a.file.localeCompare(b.file)),
      [
        { file: other, digest: sha256('not wanted'), urls: [] },
        { file: zlib, digest: sha256('zlib source'), urls: wanted[0]?.urls },
      ].sort((a, b) => a.file.localeCompare(b.file)),
      dir,
    );
    assert.equal(result.failed.length, 1);
    assert.equal(result.failed[0]?.file, corrupt);
    assert.match(result.failed[0]?.reason ?? '', /hashes to/);
  }
  assert.equal(store.has(liar as Digest), false, 'content that contradicts its folder is not stored');
  assert.equal(store.has(sha256('bit rot') as Digest), false);
  assert.equal(store.info().blobs, 2);
  for (const url of wanted[0]?.urls ?? []) {
    assert.deepEqual(refOf(store, url), {
      digest: sha256('zlib source'),
      meta: { immutable: true, fetchedAt: NOW, pinned: true },
    });
  }
  assert.equal(refOf(store, 'https://example.invalid/claimed.tar.gz'), undefined);
});

test('a distdir is matched by file name against a URL list; checksums are enforced', async (t) => {
  const store = openTemp(t);
  const distdir = tempDir(t);
  const files: Record<string, string> = {
    'lib-1.0.tar.gz': 'lib one',
    'tool 2.bin': 'tool two',
    'v1.tar.gz': 'y archive',
    'wrong.zip': 'tampered',
    'stray.txt': 'nobody asked',
    '.hidden': 'ignored',
  };
  for (const [name, content] of Object.entries(files)) writeFileSync(join(distdir, name), content);
  mkdirSync(join(distdir, 'subdir'));
  writeFileSync(join(distdir, 'subdir', 'lib-1.0.tar.gz'), 'not looked at');
  symlinkSync(join(distdir, 'lib-1.0.tar.gz'), join(distdir, 'linked.tar.gz'));
  const list = parseUrlList(
    [
      `https://example.invalid/dl/lib-1.0.tar.gz ${sha256('lib one')}`,
      'https://example.invalid/dl/tool%202.bin',
      // Two archives named v1.tar.gz: the file is the second one, and only that one gets its refs.
      `https://github.com/x/other/archive/v1.tar.gz ${sha256('other archive')}`,
      `https://github.com/x/y/archive/v1.tar.gz ${sha256('y archive')}`,
      `https://example.invalid/wrong.zip ${sha256('original')}`,
      'https://example.invalid/linked.tar.gz',
    ].join('\n'),
    'wanted.txt',
  );

  const result = await importDirectory(store, distdir, { wanted: list, now: () => NOW });

  const byName = Object.fromEntries(result.imported.map((i) => [i.file.slice(distdir.length + 1), i]));
  assert.deepEqual(Object.keys(byName).sort(), [
    'lib-1.0.tar.gz',
    'linked.tar.gz',
    'stray.txt',
    'tool 2.bin',
    'v1.tar.gz',
  ]);
  assert.deepEqual(byName['stray.txt']?.urls, []);
  assert.deepEqual(byName['v1.tar.gz']?.urls, ['https://github.com/x/y/archive/v1.tar.gz']);
  assert.deepEqual(
    result.failed.map((f) => f.file),
    [join(distdir, 'wrong.zip')],
  );
  assert.equal(store.has(sha256('tampered') as Digest), false);
  assert.equal(store.has(sha256('not looked at') as Digest), false, 'not recursive');
  assert.equal(store.has(sha256('ignored') as Digest), false, 'dot-files are skipped');

  const pinned = { immutable: true, fetchedAt: NOW, pinned: true };
  const unpinned = { immutable: false, fetchedAt: NOW };
  assert.deepEqual(refOf(store, 'https://example.invalid/dl/lib-1.0.tar.gz'), {
    digest: sha256('lib one'),
    meta: pinned,
  });
  assert.deepEqual(refOf(store, 'https://example.invalid/dl/tool%202.bin'), {
    digest: sha256('tool two'),
    meta: unpinned,
  });
  assert.deepEqual(refOf(store, 'https://github.com/x/y/archive/v1.tar.gz'), {
    digest: sha256('y archive'),
    meta: pinned,
  });
  assert.deepEqual(refOf(store, 'https://example.invalid/linked.tar.gz'), {
    digest: sha256('lib one'),
    meta: unpinned,
  });
  assert.equal(refOf(store, 'https://github.com/x/other/archive/v1.tar.gz'), undefined);
  assert.equal(refOf(store, 'https://example.invalid/wrong.zip'), undefined);
});

test('a file whose name matches only archives of other content fails and is not stored', async (t) => {
  const store = openTemp(t);
  const distdir = tempDir(t);
  writeFileSync(join(distdir, 'v2.tar.gz'), 'stranger');
  const wanted = parseUrlList(
    `https://github.com/x/a/archive/v2.tar.gz ${sha256('a')}\nhttps://github.com/x/b/archive/v2.tar.gz ${sha256('b')}\n`,
    'list',
  );
  const result = await importDirectory(store, distdir, { wanted });
  assert.deepEqual(result.imported, []);
  assert.match(result.failed[0]?.reason ?? '', /expected one of/);
  assert.equal(store.info().blobs, 0);
  assert.equal(store.info().refs, 0);
});

test('importing a directory that does not exist is a user error', async (t) => {
  const store = openTemp(t);
  await assert.rejects(
    importDirectory(store, join(tempDir(t), 'nope'), {}),
    (e: unknown) => e instanceof AccelError && e.code === 'ACCEL_FS_NOT_FOUND',
  );
});
