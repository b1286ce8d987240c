// Two tiers of mirrors: origin (a fake upstream or a real apt archive) ← central mirror ← edge mirror
// (`mirror.parent`). Every server is on 127.0.0.1, port 0, over its own temp store.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { listEpochs } from '../../src/mirror/apt/epochs.ts';
import { parseRelease } from '../../src/mirror/apt/release.ts';
import { parseParent } from '../../src/mirror/parent.ts';
import type { MirrorOptions } from '../../src/mirror/server.ts';
import { URL_NS } from '../../src/mirror/url-ref.ts';
import type { Digest } from '../../src/store/digest.ts';
import { APT_TOOLS, buildAptRepo, startArchiveServer, updateAndDownload } from '../apt-fixture.ts';
import { type FakeUpstream, startFakeUpstream } from '../fake-upstream.ts';
import { failed, needsTools, runAccel, sha256, tempDir } from '../helpers.ts';
import { serveCli, startTestMirror } from '../mirror-harness.ts';

interface Got {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

function get(url: string, headers: Record<string, string> = {}): Promise<Got> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    // The raw path as given: a forward-proxy request target is a whole URL.
    request(
      { host: u.hostname, port: u.port, path: url.slice(u.origin.length) || '/', headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
      },
    )
      .on('error', reject)
      .end();
  });
}

function proxyGet(port: number, target: string): Promise<number> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path: target, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    })
      .on('error', reject)
      .end();
  });
}

async function origin(t: TestContext): Promise<FakeUpstream> {
  const up = await startFakeUpstream();
  t.after(() => up.close());
  return up;
}

/** central (allowed to reach the origin) and an edge below it; the edge allows the origin too, as it would alone. */
async function tiers(
  t: TestContext,
  up: FakeUpstream,
  edge: Partial<MirrorOptions> & { home?: string } = {},
  central: Partial<MirrorOptions> = {},
) {
  const c = await startTestMirror(t, { allow: [up.origin], stallSeconds: 5, ...central });
  const e = await startTestMirror(t, {
    allow: [up.origin],
    stallSeconds: 5,
    parent: parseParent(c.base, 'mirror.parent'),
    ...edge,
  });
  return { central: c, edge: e };
}

const TARBALL = '/src/lib-1.0.tar.gz';

test('a miss at the edge comes from the parent and is stored at both; the next request is an edge hit', async (t) => {
  const up = await origin(t);
  const body = Buffer.from('tarball bytes\n'.repeat(1000));
  up.files.set(TARBALL, { body });
  const { central, edge } = await tiers(t, up);
  const url = `http://${up.origin}${TARBALL}`;

  const first = await get(`${edge.base}/http/${up.origin}${TARBALL}`);
  assert.equal(first.status, 200, first.body.toString());
  assert.equal(first.headers['x-accel-cache'], 'MISS');
  assert.deepEqual(first.body, body);
  assert.equal(up.count(TARBALL), 1);
  assert.equal(central.server.context.stats.misses, 1, 'the edge asked the central mirror');
  assert.equal(central.store.refs.get(URL_NS, url)?.digest, sha256(body), 'stored at the parent');
  assert.equal(edge.store.refs.get(URL_NS, url)?.digest, sha256(body), 'stored at the edge, under the origin URL');

  const requestsBefore = central.server.context.stats.requests;
  const second = await get(`${edge.base}/http/${up.origin}${TARBALL}`);
  assert.equal(second.status, 200);
  assert.equal(second.headers['x-accel-cache'], 'HIT');
  assert.deepEqual(second.body, body);
  assert.equal(central.server.context.stats.requests, requestsBefore, 'a hit at the edge never asks the parent');
  assert.equal(up.count(TARBALL), 1);

  // A pin travels to the parent, which checks it too; a wrong pin is a 502 and stores nothing at the edge.
  const other = '/src/other-2.0.tar.gz';
  up.files.set(other, { body: Buffer.from('other') });
  const wrong = await get(`${edge.base}/http/${up.origin}${other}?sha256=${'0'.repeat(64)}`);
  assert.equal(wrong.status, 502);
  assert.equal(edge.store.refs.get(URL_NS, `http://${up.origin}${other}`), undefined);
  const pinned = await get(`${edge.base}/http/${up.origin}${other}?sha256=${sha256('other')}`);
  assert.equal(pinned.status, 200, pinned.body.toString());
  assert.equal(pinned.body.toString(), 'other');

  const status = JSON.parse((await get(`${edge.base}/_accel/status.json`)).body.toString());
  assert.equal(status.parent, central.base);
  assert.ok(status.upstreams[new URL(central.base).host], 'the status page counts downloads from the parent');
});

test('the parent down: the edge serves what it holds (stale too) and a miss is a 502 naming the parent', async (t) => {
  const up = await origin(t);
  up.files.set(TARBALL, { body: Buffer.from('kept') });
  up.files.set('/index.json', { body: Buffer.from('{"v":1}'), etag: '"1"' });
  const { central, edge } = await tiers(t, up, { ttlSeconds: 0 });
  assert.equal((await get(`${edge.base}/http/${up.origin}${TARBALL}`)).status, 200);
  assert.equal((await get(`${edge.base}/http/${up.origin}/index.json`)).status, 200);
  await central.close();

  const hit = await get(`${edge.base}/http/${up.origin}${TARBALL}`);
  assert.equal(hit.status, 200);
  assert.equal(hit.headers['x-accel-cache'], 'HIT');
  assert.equal(hit.body.toString(), 'kept');
  const stale = await get(`${edge.base}/http/${up.origin}/index.json`);
  assert.equal(stale.status, 200, 'volatile content past its TTL is served stale when the parent cannot say');
  assert.equal(stale.headers['x-accel-cache'], 'STALE');

  const miss = await get(`${edge.base}/http/${up.origin}/src/new-3.0.tar.gz`);
  assert.equal(miss.status, 502);
  assert.equal(miss.headers['x-accel-error'], 'ACCEL_MIRROR_PARENT_DOWN');
  assert.match(miss.body.toString(), new RegExp(`parent mirror ${central.base}`));
  assert.match(miss.body.toString(), /hint: /);
});

test('an offline edge serves its hits and answers a miss with a 504 naming the parent, which is not asked', async (t) => {
  const up = await origin(t);
  up.files.set(TARBALL, { body: Buffer.from('kept') });
  const home = tempDir(t);
  const { central, edge } = await tiers(t, up, { home });
  assert.equal((await get(`${edge.base}/http/${up.origin}${TARBALL}`)).status, 200);
  await edge.close();

  const offline = await startTestMirror(t, {
    home,
    offline: true,
    allow: [up.origin],
    parent: parseParent(central.base, 'mirror.parent'),
  });
  const requestsBefore = central.server.context.stats.requests;
  const hit = await get(`${offline.base}/http/${up.origin}${TARBALL}`);
  assert.equal(hit.status, 200);
  assert.equal(hit.body.toString(), 'kept');
  const miss = await get(`${offline.base}/http/${up.origin}/src/new-3.0.tar.gz`);
  assert.equal(miss.status, 504);
  assert.equal(miss.headers['x-accel-error'], 'ACCEL_MIRROR_OFFLINE');
  assert.match(miss.body.toString(), new RegExp(`parent mirror ${central.base} was not asked`));
  assert.equal(central.server.context.stats.requests, requestsBefore);
});

test("the parent's 404 is a 404 at the edge, remembered like an upstream's", async (t) => {
  const up = await origin(t);
  const { central, edge } = await tiers(t, up);
  const gone = await get(`${edge.base}/http/${up.origin}/src/gone-1.0.tar.gz`);
  assert.equal(gone.status, 404, gone.body.toString());
  assert.match(gone.body.toString(), new RegExp(`parent mirror ${central.base} answered 404`));
  const requestsBefore = central.server.context.stats.requests;
  const again = await get(`${edge.base}/http/${up.origin}/src/gone-1.0.tar.gz`);
  assert.equal(again.status, 404);
  assert.match(again.body.toString(), /remembered/);
  assert.equal(central.server.context.stats.requests, requestsBefore, 'the negative cache answered');
});

test('not an open proxy through the parent: what the edge would refuse alone is refused, never forwarded', async (t) => {
  const up = await origin(t);
  const secret = await origin(t);
  secret.files.set('/admin', { body: Buffer.from('secret') });
  // The central mirror may reach the secret host: only the edge's own rules stand between a client and it.
  const { central, edge } = await tiers(t, up, { proxyHosts: [] }, { allow: [up.origin, secret.origin] });

  const refused = await get(`${edge.base}/http/${secret.origin}/admin`);
  assert.equal(refused.status, 403, refused.body.toString());
  assert.equal(refused.headers['x-accel-error'], 'ACCEL_FETCH_REFUSED');
  assert.equal((await get(`${edge.base}/http/${new URL(central.base).host}/_accel/status.json`)).status, 403);
  assert.equal((await get(`${edge.base}/r/unknown/x`)).status, 404, 'no remap of that name here');
  assert.equal(await proxyGet(edge.port, `http://${secret.origin}/admin`), 403, 'forward-proxy mode too');
  assert.equal(central.server.context.stats.requests, 0, 'nothing reached the parent');
  assert.equal(secret.requests.length, 0);
});

test('mirror.parentToken is sent to the parent and to no one else', async (t) => {
  const up = await origin(t);
  up.files.set(TARBALL, { body: Buffer.from('tok') });
  const { central, edge } = await tiers(t, up, { parentToken: 'parent-secret' }, { token: 'parent-secret' });
  const got = await get(`${edge.base}/http/${up.origin}${TARBALL}`);
  assert.equal(got.status, 200, got.body.toString());
  assert.equal(up.requests[0]?.headers.authorization, undefined, 'the origin never sees the parent token');

  const without = await startTestMirror(t, { allow: [up.origin], parent: parseParent(central.base, 'mirror.parent') });
  const denied = await get(`${without.base}/http/${up.origin}/src/lib-2.0.tar.gz`);
  assert.equal(denied.status, 502);
  assert.match(denied.body.toString(), /parent mirror .* answered 401/);
});

test('accel mirror serve --parent: shown on the status page; a bad URL is a usage error', async (t) => {
  const bad = await runAccel(['--home', tempDir(t), 'mirror', 'serve', '--port', '0', '--parent', 'central:8000']);
  failed(bad, 2, 'ACCEL_MIRROR_BAD_PARENT');
  assert.match(bad.stderr, /--parent 'central:8000' is not an http or https URL/);
  const creds = await runAccel(['--home', tempDir(t), 'mirror', 'serve', '--parent', 'http://u:p@central:8000']);
  failed(creds, 2, 'ACCEL_MIRROR_BAD_PARENT');

  const served = await serveCli(t, tempDir(t), ['--parent', 'http://127.0.0.1:9/']);
  const status = JSON.parse((await get(`${served.base}/_accel/status.json`)).body.toString());
  assert.equal(status.parent, 'http://127.0.0.1:9');
  assert.match(served.stderr(), /parent http:\/\/127\.0\.0\.1:9/);
});

const skipApt = needsTools(...APT_TOOLS).skip;
const SUITE = 'accel';

test('apt through two tiers: edge epochs are the parent epochs, and a new Release never mixes with old indexes', {
  skip: skipApt,
}, async (t) => {
  const dir = tempDir(t);
  const gpgHome = join(dir, 'gnupg');
  const keyring = join(dir, 'key.gpg');
  const [a, b] = [join(dir, 'a'), join(dir, 'b')];
  const pkgs = (v: string) => [
    { name: 'accel-hello', version: v, depends: `accel-lib (>= ${v})` },
    { name: 'accel-lib', version: v },
  ];
  await buildAptRepo(a, { suite: SUITE, packages: pkgs('1.0'), gpgHome, keyring });
  await buildAptRepo(b, { suite: SUITE, packages: pkgs('2.0'), gpgHome, keyring });
  const archive = await startArchiveServer(a);
  t.after(() => archive.close());
  const remaps = { test: [`http://${archive.origin}`] };
  const central = await startTestMirror(t, { remaps, allow: [archive.origin], ttlSeconds: 0 });
  // The edge names the same remap (its base is never fetched: the parent is asked for /r/test/…).
  const edge = await startTestMirror(t, { remaps, parent: parseParent(central.base, 'mirror.parent'), ttlSeconds: 0 });
  const sources = (remap: string) => `deb [signed-by=${keyring}] ${edge.base}/r/${remap}/ ${SUITE} main\n`;

  assert.deepEqual(await updateAndDownload(t, sources('test')), ['accel-hello_1.0_all.deb', 'accel-lib_1.0_all.deb']);
  const [edgeA] = listEpochs(edge.store, 'test');
  const [centralA] = listEpochs(central.store, 'test');
  assert.ok(edgeA && centralA);
  assert.equal(edgeA.parentEpoch, centralA.id, "the edge's epoch is the central epoch it came from");
  assert.deepEqual(edgeA.release, centralA.release, 'the same release files, byte for byte');
  const archiveRequests = archive.requests.length;

  // A client of the central mirror fetched A's Packages.gz, which the edge never did. Then the origin moves to B
  // (no by-hash files there: A's indexes are gone) and the central mirror follows; an edge client still in A gets
  // A's index, checked by the sha256 of A's Release, from the central epoch A: the only place it still exists.
  const centralIndex = await get(`${central.base}/r/test/dists/${SUITE}/main/binary-all/Packages.gz`);
  assert.equal(centralIndex.status, 200);
  archive.setRoot(b);
  const centralInRelease = await get(`${central.base}/r/test/dists/${SUITE}/InRelease`);
  assert.notEqual(centralInRelease.headers['x-accel-epoch'], centralA.id, 'the central mirror moved to B');
  assert.ok(archive.requests.length > archiveRequests);
  const listedA = parseRelease(edge.store.read(edgeA.release.InRelease as Digest)?.toString() ?? '').files.get(
    'main/binary-all/Packages.gz',
  );
  assert.ok(listedA);
  const oldIndex = await get(`${edge.base}/r/test@${edgeA.id}/dists/${SUITE}/main/binary-all/Packages.gz`);
  assert.equal(oldIndex.status, 200, oldIndex.body.toString());
  assert.equal(sha256(oldIndex.body), listedA.sha256, "A's index for A's Release, although both tiers know B");

  // Unpinned edge clients move to B as a whole: the Release they get lists the index they get.
  const inRelease = await get(`${edge.base}/r/test/dists/${SUITE}/InRelease`);
  assert.equal(inRelease.status, 200);
  assert.deepEqual(inRelease.body, centralInRelease.body, 'the edge serves the Release the central mirror serves');
  const listedB = parseRelease(inRelease.body.toString()).files.get('main/binary-all/Packages.gz');
  const index = await get(`${edge.base}/r/test/dists/${SUITE}/main/binary-all/Packages.gz`);
  assert.equal(sha256(index.body), listedB?.sha256);
  assert.notEqual(listedB?.sha256, listedA.sha256);
  assert.deepEqual(await updateAndDownload(t, sources('test')), ['accel-hello_2.0_all.deb', 'accel-lib_2.0_all.deb']);
  const edgeB = listEpochs(edge.store, 'test').at(-1);
  assert.equal(edgeB?.parentEpoch, centralInRelease.headers['x-accel-epoch']);

  // The parent gone: the edge keeps serving both epochs it holds.
  await central.close();
  assert.deepEqual(await updateAndDownload(t, sources('test')), ['accel-hello_2.0_all.deb', 'accel-lib_2.0_all.deb']);
  assert.deepEqual(await updateAndDownload(t, sources(`test@${edgeA.id}`)), [
    'accel-hello_1.0_all.deb',
    'accel-lib_1.0_all.deb',
  ]);
});
