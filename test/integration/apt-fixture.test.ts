import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import {
  APT_TOOLS,
  type ArchiveServer,
  aptGet,
  buildAptRepo,
  debsDownloaded,
  startArchiveServer,
} from '../apt-fixture.ts';
import { needsTools, tempDir } from '../helpers.ts';

const skip = needsTools(...APT_TOOLS).skip;
const SUITE = 'accel';

async function archiveServer(t: TestContext, root: string): Promise<ArchiveServer> {
  const server = await startArchiveServer(root);
  t.after(() => server.close());
  return server;
}

/** A raw request, so that paths reach the server exactly as written. */
function get(
  port: number,
  path: string,
  method = 'GET',
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => {
        body += d.toString();
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('archive server: serves the current root, switches roots, refuses escapes', async (t) => {
  const dir = tempDir(t);
  for (const [state, body] of [
    ['a', 'state A'],
    ['b', 'state B!'],
  ] as const) {
    mkdirSync(join(dir, state, 'dists'), { recursive: true });
    writeFileSync(join(dir, state, 'dists', 'Release'), body);
  }
  writeFileSync(join(dir, 'secret'), 'outside');
  const server = await archiveServer(t, join(dir, 'a'));

  const a = await get(server.port, '/dists/Release');
  assert.equal(a.status, 200);
  assert.equal(a.body, 'state A');
  assert.equal(a.headers['content-length'], '7');
  assert.match(String(a.headers['last-modified']), / GMT$/);
  const head = await get(server.port, '/dists/Release', 'HEAD');
  assert.equal(head.status, 200);
  assert.equal(head.body, '');
  assert.equal(head.headers['content-length'], '7');
  assert.equal((await get(server.port, '/dists/missing')).status, 404);
  assert.equal((await get(server.port, '/dists')).status, 404, 'a directory is not a file');
  assert.equal((await get(server.port, '/../secret')).status, 400);
  assert.equal((await get(server.port, '/dists/%2e%2e/%2e%2e/secret')).status, 400);
  assert.equal((await get(server.port, '/dists/Release', 'POST')).status, 405);

  server.setRoot(join(dir, 'b'));
  assert.equal((await get(server.port, '/dists/Release')).body, 'state B!');
  assert.equal(server.count('/dists/'), 6);
  assert.equal(server.count('/dists/Release'), 4);
});

test('apt-get resolves and downloads from archive state A, then state B after the switch', { skip }, async (t) => {
  const dir = tempDir(t);
  const gpgHome = join(dir, 'gnupg');
  const keyring = join(dir, 'archive-keyring.gpg');
  const stateA = join(dir, 'state-a');
  const stateB = join(dir, 'state-b');
  const root = join(dir, 'apt');

  await buildAptRepo(stateA, {
    suite: SUITE,
    gpgHome,
    keyring,
    byHash: true,
    packages: [
      { name: 'accel-hello', version: '1.0', depends: 'accel-lib (>= 1.0)' },
      { name: 'accel-lib', version: '1.0' },
    ],
  });
  const release = readFileSync(join(stateA, 'dists', SUITE, 'Release'), 'utf8');
  assert.match(release, /^Acquire-By-Hash: yes$/m);
  assert.match(release, /^Suite: accel$/m);
  assert.match(readFileSync(join(stateA, 'dists', SUITE, 'InRelease'), 'utf8'), /BEGIN PGP SIGNED MESSAGE/);

  const server = await archiveServer(t, stateA);
  const sourcesList = `deb [signed-by=${keyring}] http://${server.origin}/ ${SUITE} main`;
  const update = await aptGet(['update'], { sourcesList, root });
  assert.equal(update.code, 0, update.stderr);
  assert.doesNotMatch(update.stderr, /^[WE]:/m, 'a signed archive, no warnings');
  assert.equal(server.count(`/dists/${SUITE}/InRelease`), 1);
  assert.equal(server.count(`/dists/${SUITE}/main/binary-all/by-hash/SHA256/`), 1, 'apt used by-hash');

  const install = await aptGet(['install', '--download-only', '-y', 'accel-hello'], { sourcesList, root });
  assert.equal(install.code, 0, install.stderr);
  assert.deepEqual(debsDownloaded(root), ['accel-hello_1.0_all.deb', 'accel-lib_1.0_all.deb']);

  // State B without by-hash: apt must fall back to the plain index names.
  await buildAptRepo(stateB, {
    suite: SUITE,
    gpgHome,
    keyring,
    packages: [
      { name: 'accel-hello', version: '2.0', depends: 'accel-lib (>= 2.0)' },
      { name: 'accel-lib', version: '2.0' },
    ],
  });
  server.setRoot(stateB);
  const byHashBefore = server.count(`/dists/${SUITE}/main/binary-all/by-hash/`);
  const update2 = await aptGet(['update'], { sourcesList, root });
  assert.equal(update2.code, 0, update2.stderr);
  assert.doesNotMatch(update2.stderr, /^[WE]:/m);
  assert.equal(server.count(`/dists/${SUITE}/main/binary-all/by-hash/`), byHashBefore);
  assert.equal(server.count(`/dists/${SUITE}/main/binary-all/Packages.xz`), 1);

  const install2 = await aptGet(['install', '--download-only', '-y', 'accel-hello'], { sourcesList, root });
  assert.equal(install2.code, 0, install2.stderr);
  assert.deepEqual(debsDownloaded(root), [
    'accel-hello_1.0_all.deb',
    'accel-hello_2.0_all.deb',
    'accel-lib_1.0_all.deb',
    'accel-lib_2.0_all.deb',
  ]);
  assert.equal(server.count('/pool/main/a/accel-hello/accel-hello_2.0_all.deb'), 1);
  assert.equal(server.count('/pool/main/a/accel-lib/accel-lib_2.0_all.deb'), 1);
});
