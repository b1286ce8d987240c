import assert from 'node:assert/strict';
import { cpSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { listEpochs } from '../../src/mirror/apt/epochs.ts';
import { parseRelease } from '../../src/mirror/apt/release.ts';
import type { MirrorOptions } from '../../src/mirror/server.ts';
import {
  APT_TOOLS,
  aptGet,
  buildAptRepo,
  debsDownloaded,
  startArchiveServer,
  updateAndDownload,
} from '../apt-fixture.ts';
import { needsTools, sha256, tempDir } from '../helpers.ts';
import { startTestMirror } from '../mirror-harness.ts';

const skip = needsTools(...APT_TOOLS).skip;
const SUITE = 'accel';
const STATE_A = [
  { name: 'accel-hello', version: '1.0', depends: 'accel-lib (>= 1.0)' },
  { name: 'accel-lib', version: '1.0' },
];
const STATE_B = [
  { name: 'accel-hello', version: '2.0', depends: 'accel-lib (>= 2.0)' },
  { name: 'accel-lib', version: '2.0' },
];

interface World {
  dir: string;
  gpgHome: string;
  keyring: string;
  a: string;
  b: string;
}

/** Builds archive states A and B once per test (real .debs, apt-ftparchive, a throw-away signing key). */
async function world(t: TestContext): Promise<World> {
  const dir = tempDir(t);
  const gpgHome = join(dir, 'gnupg');
  const keyring = join(dir, 'key.gpg');
  const a = join(dir, 'a');
  const b = join(dir, 'b');
  await buildAptRepo(a, { suite: SUITE, packages: STATE_A, gpgHome, keyring, byHash: true });
  await buildAptRepo(b, { suite: SUITE, packages: STATE_B, gpgHome, keyring, byHash: true });
  return { dir, gpgHome, keyring, a, b };
}

function startMirror(t: TestContext, upstreamOrigin: string, options: Partial<MirrorOptions> & { home: string }) {
  return startTestMirror(t, { remaps: { test: [`http://${upstreamOrigin}`] }, allow: [upstreamOrigin], ...options });
}

function sources(port: number, keyring: string, remap = 'test'): string {
  return `deb [signed-by=${keyring}] http://127.0.0.1:${port}/r/${remap}/ ${SUITE} main\n`;
}

function get(port: number, path: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
    })
      .on('error', reject)
      .end();
  });
}

test('apt-get update and install through the mirror, then again with the upstream gone and the mirror offline', {
  skip,
}, async (t) => {
  const w = await world(t);
  const upstream = await startArchiveServer(w.a);
  t.after(() => upstream.close());
  const home = tempDir(t);
  const online = await startMirror(t, upstream.origin, { home });
  const debs = await updateAndDownload(t, sources(online.port, w.keyring));
  assert.deepEqual(debs, ['accel-hello_1.0_all.deb', 'accel-lib_1.0_all.deb']);
  await online.close();
  await upstream.close();

  const offline = await startMirror(t, upstream.origin, { home, offline: true });
  assert.deepEqual(await updateAndDownload(t, sources(offline.port, w.keyring)), debs);
  const never = await get(offline.port, '/r/test/pool/main/n/never/never_1.0_all.deb');
  assert.equal(never.status, 504);
  assert.match(never.body.toString(), /offline/);
});

test('epochs: a client pinned to A keeps A after the upstream moved to B; unpinned clients see B; never a mix', {
  skip,
}, async (t) => {
  const w = await world(t);
  // Like Debian, B's archive still holds A's by-hash index files for a while.
  for (const sub of ['main/binary-all/by-hash']) {
    cpSync(join(w.a, 'dists', SUITE, sub), join(w.b, 'dists', SUITE, sub), { recursive: true, force: false });
  }
  const upstream = await startArchiveServer(w.a);
  t.after(() => upstream.close());
  const home = tempDir(t);
  const m = await startMirror(t, upstream.origin, { home, ttlSeconds: 0 });

  // A race: a client reads InRelease of A, the upstream moves to B, then the client asks for the index.
  const inRelease = await get(m.port, `/r/test/dists/${SUITE}/InRelease`);
  assert.equal(inRelease.status, 200);
  const listed = parseRelease(inRelease.body.toString()).files.get('main/binary-all/Packages.xz');
  assert.ok(listed);
  upstream.setRoot(w.b);
  const pinnedToFirst = listEpochs(m.store, 'test')[0]?.id;
  assert.ok(pinnedToFirst);
  const index = await get(m.port, `/r/test@${pinnedToFirst}/dists/${SUITE}/main/binary-all/Packages.xz`);
  assert.equal(index.status, 200);
  assert.equal(sha256(index.body), listed.sha256, "the index matches the Release the client was given, not B's");
  upstream.setRoot(w.a);

  // Client A does a full update + install while A is upstream; its epoch is recorded.
  assert.deepEqual(await updateAndDownload(t, sources(m.port, w.keyring)), [
    'accel-hello_1.0_all.deb',
    'accel-lib_1.0_all.deb',
  ]);
  const epochA = listEpochs(m.store, 'test').at(-1)?.id;
  assert.ok(epochA);

  upstream.setRoot(w.b);
  // Unpinned: the next InRelease (TTL 0) starts epoch B; the client gets B's packages.
  assert.deepEqual(await updateAndDownload(t, sources(m.port, w.keyring)), [
    'accel-hello_2.0_all.deb',
    'accel-lib_2.0_all.deb',
  ]);
  const epochs = listEpochs(m.store, 'test');
  assert.ok(epochs.length >= 2);
  assert.notEqual(epochs.at(-1)?.id, epochA);

  // Pinned to A: A's indexes and A's packages, from the store, although the upstream now serves B.
  assert.deepEqual(await updateAndDownload(t, sources(m.port, w.keyring, `test@${epochA}`)), [
    'accel-hello_1.0_all.deb',
    'accel-lib_1.0_all.deb',
  ]);
});

test('a .deb whose bytes differ from the sha256 in the cached index is refused and not stored', { skip }, async (t) => {
  const w = await world(t);
  const upstream = await startArchiveServer(w.a);
  t.after(() => upstream.close());
  const m = await startMirror(t, upstream.origin, { home: tempDir(t) });
  const root = tempDir(t);
  const update = await aptGet(['update'], { sourcesList: sources(m.port, w.keyring), root });
  assert.equal(update.code, 0, update.stderr);
  const debPath = 'pool/main/a/accel-lib/accel-lib_1.0_all.deb';
  const file = join(w.a, debPath);
  const size = statSync(file).size;
  writeFileSync(file, Buffer.alloc(size, 0x42));
  const blobsBefore = m.store.info().blobs;
  const r = await get(m.port, `/r/test/${debPath}`);
  assert.equal(r.status, 502);
  assert.match(r.body.toString(), /sha256/);
  assert.equal(m.store.info().blobs, blobsBefore, 'nothing stored');
  assert.deepEqual(readdirSync(m.store.layout.tmp), []);
});

test('forward-proxy mode: apt with Acquire::http::Proxy reaches the remap upstream; other hosts are refused', {
  skip,
}, async (t) => {
  const w = await world(t);
  const upstream = await startArchiveServer(w.a);
  t.after(() => upstream.close());
  const m = await startMirror(t, upstream.origin, { home: tempDir(t) });
  const root = tempDir(t);
  const sourcesList = `deb [signed-by=${w.keyring}] http://${upstream.origin}/ ${SUITE} main\n`;
  const proxy = ['-o', `Acquire::http::Proxy::127.0.0.1=http://127.0.0.1:${m.port}`];
  const update = await aptGet([...proxy, 'update'], { sourcesList, root });
  assert.equal(update.code, 0, update.stderr);
  const install = await aptGet([...proxy, 'install', '--download-only', '-y', 'accel-hello'], { sourcesList, root });
  assert.equal(install.code, 0, install.stderr);
  assert.deepEqual(debsDownloaded(root), ['accel-hello_1.0_all.deb', 'accel-lib_1.0_all.deb']);
  assert.ok(listEpochs(m.store, 'test').length >= 1, 'proxied requests went through the remap and its epochs');
  const open = await new Promise<number>((resolve, reject) => {
    request(
      { host: '127.0.0.1', port: m.port, path: 'http://example.invalid/debian/dists/x/InRelease', agent: false },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    )
      .on('error', reject)
      .end();
  });
  assert.equal(open, 403, 'not an open proxy');
});

test("a repository without InRelease (apt-ftparchive's Release only): the 404 is remembered, so apt works offline too", {
  skip,
}, async (t) => {
  const w = await world(t);
  rmSync(join(w.a, 'dists', SUITE, 'InRelease'));
  const upstream = await startArchiveServer(w.a);
  t.after(() => upstream.close());
  const home = tempDir(t);
  // Through the plain URL route (what `deb http://mirror/http/<host>/…` lines use), no remap involved.
  const direct = (port: number) =>
    `deb [signed-by=${w.keyring}] http://127.0.0.1:${port}/http/${upstream.origin}/ ${SUITE} main\n`;
  const online = await startMirror(t, upstream.origin, { home });
  const debs = await updateAndDownload(t, direct(online.port));
  assert.deepEqual(debs, ['accel-hello_1.0_all.deb', 'accel-lib_1.0_all.deb']);
  const again = await get(online.port, `/http/${upstream.origin}/dists/${SUITE}/InRelease`);
  assert.equal(again.status, 404);
  await online.close();
  await upstream.close();

  const offline = await startMirror(t, upstream.origin, { home, offline: true });
  const remembered = await get(offline.port, `/http/${upstream.origin}/dists/${SUITE}/InRelease`);
  assert.equal(remembered.status, 404, remembered.body.toString());
  assert.match(remembered.body.toString(), /remembered/);
  assert.deepEqual(await updateAndDownload(t, direct(offline.port)), debs);
});
