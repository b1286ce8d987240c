import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, openSync, readdirSync, statSync, writeSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { test } from 'node:test';
import type { MirrorOptions } from '../../src/mirror/server.ts';
import { fingerprintOf } from '../../src/store/cas.ts';
import type { Digest } from '../../src/store/digest.ts';
import { blobPath } from '../../src/store/layout.ts';
import type { Store } from '../../src/store/store.ts';
import { type FakeUpstream, startFakeUpstream } from '../fake-upstream.ts';
import { sha256, tempDir, until } from '../helpers.ts';
import { startTestMirror } from '../mirror-harness.ts';

type Ctx = import('node:test').TestContext;

async function upstream(t: Ctx): Promise<FakeUpstream> {
  const up = await startFakeUpstream();
  t.after(() => up.close());
  return up;
}

function mirror(t: Ctx, up: FakeUpstream, options: Partial<MirrorOptions> & { home?: string } = {}) {
  return startTestMirror(t, { stallSeconds: 5, allow: [up.origin], ...options });
}

interface Got {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  /** The connection broke before the body was complete. */
  broken: boolean;
}

/** A raw HTTP GET that reports a broken body instead of hiding it. */
function get(url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      let broken = false;
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', () => {
        broken = true;
      });
      res.on('aborted', () => {
        broken = true;
      });
      res.on('close', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks),
          broken: broken || !res.complete,
        }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

const tarball = (n = 64 * 1024) => randomBytes(n);

test('cold request is a MISS, warm is a HIT with the same bytes, also after a mirror restart', async (t) => {
  const up = await upstream(t);
  const body = tarball();
  up.files.set('/releases/zlib-1.3.1.tar.gz', { body });
  const home = tempDir(t);
  const m = await mirror(t, up, { home });
  const url = `${m.base}/http/${up.origin}/releases/zlib-1.3.1.tar.gz`;
  const cold = await get(url);
  assert.equal(cold.status, 200);
  assert.equal(cold.headers['x-accel-cache'], 'MISS');
  assert.deepEqual(cold.body, body);
  const warm = await get(url);
  assert.equal(warm.headers['x-accel-cache'], 'HIT');
  assert.deepEqual(warm.body, body);
  assert.equal(up.count('/releases/zlib-1.3.1.tar.gz'), 1);
  await m.close();
  const again = await mirror(t, up, { home });
  const restarted = await get(`${again.base}/http/${up.origin}/releases/zlib-1.3.1.tar.gz`);
  assert.equal(restarted.headers['x-accel-cache'], 'HIT');
  assert.deepEqual(restarted.body, body);
  assert.equal(up.count('/releases/zlib-1.3.1.tar.gz'), 1, 'the upstream was asked once in all');
});

test('50 concurrent cold requests make one upstream request; bytes reach clients before the download ends', async (t) => {
  const up = await upstream(t);
  const body = tarball(2 * 1024 * 1024);
  up.files.set('/big-2.0.tar.gz', { body, pauseAt: 1024 * 1024 });
  const m = await mirror(t, up);
  const url = `${m.base}/http/${up.origin}/big-2.0.tar.gz`;
  // One client watches for its first bytes while the upstream is paused half-way.
  const firstBytes = new Promise<number>((resolve, reject) => {
    request(url, { agent: false }, (res) => res.once('data', (c: Buffer) => resolve(c.length)))
      .on('error', reject)
      .end();
  });
  const all = Array.from({ length: 50 }, () => get(url));
  assert.ok((await firstBytes) > 0, 'a client received bytes while the upstream was still paused');
  up.release();
  const results = await Promise.all(all);
  for (const r of results) {
    assert.equal(r.status, 200);
    assert.equal(r.broken, false);
    assert.equal(sha256(r.body), sha256(body));
  }
  assert.equal(up.count('/big-2.0.tar.gz'), 1);
  assert.equal(m.store.info().blobs, 1);
});

test('a truncated upstream body breaks the client connection, stores nothing, and is fetched again', async (t) => {
  const up = await upstream(t);
  const body = tarball(512 * 1024);
  up.files.set('/cut-1.0.tar.gz', { body, truncateAt: 100 * 1024 });
  const m = await mirror(t, up);
  const url = `${m.base}/http/${up.origin}/cut-1.0.tar.gz`;
  const first = await get(url);
  // Depending on when the upstream breaks: a 502 before the first byte, or a broken 200 after it.
  assert.ok(first.status === 502 || first.broken, 'the client must see an error, never a short complete body');
  assert.ok(first.body.length < body.length);
  assert.equal(m.store.info().blobs, 0);
  assert.deepEqual(readdirSync(m.store.layout.tmp), []);
  const second = await get(url);
  assert.equal(second.broken, false);
  assert.deepEqual(second.body, body);
  assert.equal(up.count('/cut-1.0.tar.gz'), 2);
});

test('an interrupted download resumes with Range where the upstream supports it', async (t) => {
  const up = await upstream(t);
  const body = tarball(512 * 1024);
  up.files.set('/resume-3.1.tar.gz', { body, truncateAt: 200 * 1024, ranges: true, etag: '"v1"' });
  const m = await mirror(t, up);
  const got = await get(`${m.base}/http/${up.origin}/resume-3.1.tar.gz`);
  assert.equal(got.broken, false);
  assert.equal(sha256(got.body), sha256(body));
  const ranged = up.requests.filter((r) => r.path === '/resume-3.1.tar.gz' && r.headers.range);
  // One resume, from where the mirror's copy ended (bytes still in flight when the connection broke are lost).
  assert.equal(ranged.length, 1);
  const from = Number(/^bytes=(\d+)-$/.exec(String(ranged[0]?.headers.range))?.[1]);
  assert.ok(from > 0 && from <= 200 * 1024, `resumed from ${from}`);
  assert.equal(ranged[0]?.headers['if-range'], '"v1"');
});

test('--offline serves everything cached with no upstream request; a miss is 504 naming the URL', async (t) => {
  const up = await upstream(t);
  up.files.set('/a-1.0.tar.gz', { body: tarball() });
  up.files.set('/index.json', { body: Buffer.from('{"v":1}'), etag: '"i1"' });
  const home = tempDir(t);
  const online = await mirror(t, up, { home, ttlSeconds: 0 });
  for (const p of ['/a-1.0.tar.gz', '/index.json'])
    assert.equal((await get(`${online.base}/http/${up.origin}${p}`)).status, 200);
  await online.close();
  const before = up.requests.length;
  const offline = await mirror(t, up, { home, offline: true, ttlSeconds: 0 });
  for (const p of ['/a-1.0.tar.gz', '/index.json']) {
    const r = await get(`${offline.base}/http/${up.origin}${p}`);
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-accel-cache'], 'HIT');
  }
  const miss = await get(`${offline.base}/http/${up.origin}/never-fetched.tar.gz`);
  assert.equal(miss.status, 504);
  assert.match(miss.body.toString(), new RegExp(`offline.*http://${up.origin}/never-fetched.tar.gz`));
  assert.equal(up.requests.length, before, 'no upstream request while offline');
});

test('?sha256= pins content: a mismatch is 502 with nothing stored; a match is served and cached', async (t) => {
  const up = await upstream(t);
  const body = tarball();
  up.files.set('/pinned.tar.gz', { body });
  const m = await mirror(t, up);
  const url = `${m.base}/http/${up.origin}/pinned.tar.gz`;
  const bad = await get(`${url}?sha256=${sha256('something else')}`);
  assert.equal(bad.status, 502);
  assert.equal(m.store.info().blobs, 0);
  const good = await get(`${url}?sha256=${sha256(body)}`);
  assert.equal(good.status, 200);
  assert.deepEqual(good.body, body);
  assert.equal(up.requests.at(-1)?.path, '/pinned.tar.gz', 'the pin is not forwarded upstream');
  const again = await get(`${url}?sha256=${sha256(body)}`);
  assert.equal(again.headers['x-accel-cache'], 'HIT');
});

test('Range requests get 206 with the right bytes from the cache', async (t) => {
  const up = await upstream(t);
  const body = tarball(100_000);
  up.files.set('/r-1.tar.gz', { body });
  const m = await mirror(t, up);
  const url = `${m.base}/http/${up.origin}/r-1.tar.gz`;
  const cold = await get(url, { range: 'bytes=10-19' });
  assert.equal(cold.status, 206);
  assert.deepEqual(cold.body, body.subarray(10, 20));
  const tail = await get(url, { range: 'bytes=-5' });
  assert.equal(tail.status, 206);
  assert.equal(tail.headers['content-range'], `bytes 99995-99999/100000`);
  assert.deepEqual(tail.body, body.subarray(99_995));
  assert.equal((await get(url, { range: 'bytes=100000-' })).status, 416);
});

test('volatile content is revalidated after the TTL: 304 → REVALIDATED, change → MISS, upstream down → STALE', async (t) => {
  const up = await upstream(t);
  up.files.set('/dists/stable/InRelease', { body: Buffer.from('epoch 1'), etag: '"e1"' });
  const m = await mirror(t, up, { ttlSeconds: 0 });
  const url = `${m.base}/http/${up.origin}/dists/stable/InRelease`;
  assert.equal((await get(url)).headers['x-accel-cache'], 'MISS');
  const revalidated = await get(url);
  assert.equal(revalidated.headers['x-accel-cache'], 'REVALIDATED');
  assert.equal(revalidated.body.toString(), 'epoch 1');
  assert.equal(up.requests.at(-1)?.headers['if-none-match'], '"e1"');
  up.files.set('/dists/stable/InRelease', { body: Buffer.from('epoch 2'), etag: '"e2"' });
  const changed = await get(url);
  assert.equal(changed.headers['x-accel-cache'], 'MISS');
  assert.equal(changed.body.toString(), 'epoch 2');
  up.files.set('/dists/stable/InRelease', { body: Buffer.alloc(0), status: 503 });
  const stale = await get(url);
  assert.equal(stale.headers['x-accel-cache'], 'STALE');
  assert.equal(stale.body.toString(), 'epoch 2');
});

test('a remap tries its upstreams in order: failover past a 500', async (t) => {
  const up = await upstream(t);
  const body = tarball();
  up.files.set('/mirror-a/pool/x_1.0.deb', { body, status: 500 });
  up.files.set('/mirror-b/pool/x_1.0.deb', { body });
  const m = await mirror(t, up, {
    remaps: { debs: [`http://${up.origin}/mirror-a`, `http://${up.origin}/mirror-b/`] },
  });
  const r = await get(`${m.base}/r/debs/pool/x_1.0.deb`);
  assert.equal(r.status, 200);
  assert.deepEqual(r.body, body);
  assert.equal((await get(`${m.base}/r/nope/pool/x_1.0.deb`)).status, 404);
});

test('refused: traversal probes, private upstreams not allowed, missing or wrong token, other methods', async (t) => {
  const up = await upstream(t);
  up.files.set('/ok-1.tar.gz', { body: tarball(100) });
  const m = await mirror(t, up, { allow: [] });
  for (const probe of [
    `/http/${up.origin}/../../etc/passwd`,
    `/http/${up.origin}/a/%2e%2e/%2e%2e/etc/passwd`,
    `/http/${up.origin}/a%2f..%2fb`,
    `/http/${up.origin}/a%5c..%5cb`,
    '/http/bad%20host/x',
  ]) {
    const r = await rawGet(m.base, probe);
    assert.equal(r, 400, probe);
  }
  const forged = await get(`${m.base}/http/${up.origin}/ok-1.tar.gz`);
  assert.equal(forged.status, 403);
  assert.match(forged.body.toString(), /--allow/);
  assert.equal((await get(`${m.base}/file/etc/passwd`)).status, 404);
  assert.equal((await get(`${m.base}/http/${up.origin}/ok-1.tar.gz`, {}, 'DELETE')).status, 405);
  assert.equal(up.requests.length, 0, 'nothing reached the upstream');

  const locked = await mirror(t, up, { token: 's3cret' });
  const url = `${locked.base}/http/${up.origin}/ok-1.tar.gz`;
  assert.equal((await get(url)).status, 401);
  assert.equal((await get(url, { authorization: 'Bearer wrong' })).status, 401);
  assert.equal((await get(url, { authorization: 'Bearer s3cret' })).status, 200);
});

/** Sends the path exactly as written (URL classes would normalise the probes away). */
function rawGet(base: string, path: string): Promise<number> {
  const { port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

test('status pages: HTML, JSON and Prometheus metrics', async (t) => {
  const up = await upstream(t);
  up.files.set('/s-1.tar.gz', { body: tarball(1000) });
  const m = await mirror(t, up);
  await get(`${m.base}/http/${up.origin}/s-1.tar.gz`);
  await get(`${m.base}/http/${up.origin}/s-1.tar.gz`);
  const json = JSON.parse((await get(`${m.base}/_accel/status.json`)).body.toString());
  assert.equal(json.hits, 1);
  assert.equal(json.misses, 1);
  assert.equal(json.bytesFetched, 1000);
  assert.equal(json.bytesServed, 2000);
  assert.equal(json.store.urls, 1);
  const html = await get(`${m.base}/_accel/status`);
  assert.match(String(html.headers['content-type']), /text\/html/);
  assert.match(html.body.toString(), /<table>.*hits/s);
  const metrics = (await get(`${m.base}/_accel/metrics`)).body.toString();
  assert.match(metrics, /^accel_mirror_responses_total\{cache="HIT"\} 1$/m);
  assert.match(metrics, /^# TYPE accel_mirror_fetched_bytes_total counter$/m);
});

test('a stalled upstream is abandoned and the client connection broken', async (t) => {
  const up = await upstream(t);
  up.files.set('/stall-1.tar.gz', { body: tarball(10_000), stallAt: 1000 });
  const m = await mirror(t, up, { stallSeconds: 0.5 });
  const r = await get(`${m.base}/http/${up.origin}/stall-1.tar.gz`);
  assert.equal(r.broken, true);
  assert.equal(m.store.info().blobs, 0);
});

test('an allowed upstream that refuses connections is a 502 naming it, not a 500', async (t) => {
  const closed = await new Promise<number>((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
  const m = await startTestMirror(t, { allow: [`127.0.0.1:${closed}`] });
  const got = await get(`${m.base}/http/127.0.0.1:${closed}/x.tar.gz`);
  assert.equal(got.status, 502, got.body.toString());
  assert.match(got.body.toString(), new RegExp(`cannot reach 127\\.0\\.0\\.1:${closed}`));
});

test('?sha256= answers one request from the store but never rebinds the URL to another blob (cache poisoning)', async (t) => {
  const up = await upstream(t);
  const secret = tarball(4096);
  const real = tarball(4096);
  up.files.set('/other.tar.gz', { body: secret });
  up.files.set('/lib-1.0.tar.gz', { body: real });
  const home = tempDir(t);
  const m = await mirror(t, up, { home });
  // Any stored blob: here one fetched through another URL.
  assert.deepEqual((await get(`${m.base}/http/${up.origin}/other.tar.gz`)).body, secret);
  // The attacker names the URL others use and pins it to that blob.
  const pinned = await get(`${m.base}/http/${up.origin}/lib-1.0.tar.gz?sha256=${sha256(secret)}`);
  assert.deepEqual(pinned.body, secret, 'the pinned request itself is answered by content');
  // Everyone else, online and offline, gets what the upstream sends for that URL.
  assert.deepEqual((await get(`${m.base}/http/${up.origin}/lib-1.0.tar.gz`)).body, real);
  await m.close();
  const offline = await mirror(t, up, { home, offline: true });
  assert.deepEqual((await get(`${offline.base}/http/${up.origin}/lib-1.0.tar.gz`)).body, real);
});

/** Overwrites bytes of a stored blob in place, keeping its size (what bit rot or a stray write does). */
function corrupt(store: Store, digest: string): void {
  const path = blobPath(store.layout, digest as Digest);
  chmodSync(path, 0o644);
  const fd = openSync(path, 'r+');
  writeSync(fd, Buffer.from('CORRUPT'), 0, 7, 100);
  closeSync(fd);
  chmodSync(path, 0o444);
}

for (const size of [4 * 1024, 3 * 1024 * 1024]) {
  test(`a blob corrupted on disk after it was served is never served again as a complete 200 (${size} bytes)`, async (t) => {
    const up = await upstream(t);
    const body = tarball(size);
    const digest = sha256(body) as Digest;
    up.files.set('/f.tar.gz', { body });
    const m = await mirror(t, up);
    const url = `${m.base}/http/${up.origin}/f.tar.gz`;
    const cas = `${m.base}/cache/cas/${digest}`;
    assert.deepEqual((await get(url)).body, body);
    assert.deepEqual((await get(url)).body, body, 'a hit: hashed and remembered now');
    const right = body.subarray(0, 200);
    const wrong = (g: Got) => g.status === 200 && !g.broken && !g.body.equals(body);
    const wrongRange = (g: Got) => g.status === 206 && !g.broken && !g.body.equals(right);
    const quarantined = () =>
      existsSync(m.store.layout.quarantine) ? readdirSync(m.store.layout.quarantine).length : 0;

    // Each probe: the blob is stored and hashed by this process (complete hits first), then corrupted in place.
    const probe = async (what: string, request: () => Promise<Got>, isWrong: (g: Got) => boolean, bitRot = false) => {
      const warm = await get(url);
      assert.deepEqual(warm.body, body, `${what}: stored again`);
      assert.deepEqual((await get(url, { range: 'bytes=0-199' })).body, right, `${what}: a range of the good blob`);
      const before = quarantined();
      corrupt(m.store, digest);
      // Bit rot leaves size, inode and times alone: model it by telling the server the file is unchanged.
      if (bitRot) m.server.context.verified.set(digest, fingerprintOf(statSync(blobPath(m.store.layout, digest))));
      const got = await request();
      assert.ok(!isWrong(got), `${what}: the right bytes (fetched again) or a broken connection, got ${got.status}`);
      assert.equal(quarantined(), before + 1, `${what}: the corrupt blob was quarantined`);
      // Afterwards: the mirror fetches the URL again; the build cache has no blob under that digest.
      const next = await get(url);
      assert.deepEqual(next.body, body, `${what}: the next request gets the right bytes`);
      if (!got.broken && got.status === 200) assert.equal(got.headers['x-accel-cache'], 'MISS', `${what}: refetched`);
    };
    await probe('a full response', () => get(url), wrong);
    await probe('a full response, metadata unchanged', () => get(url), wrong, true);
    await probe('a range', () => get(url, { range: 'bytes=0-199' }), wrongRange);
    await probe('/cache/cas', () => get(cas), wrong);
    await probe('/cache/cas, metadata unchanged', () => get(cas), wrong, true);
    // A miss in the build cache once the blob is quarantined (nothing refetched it in between).
    corrupt(m.store, digest);
    await get(cas);
    assert.equal((await get(cas)).status, 404, '/cache/cas: a miss after quarantine');
  });
}

test('close() stops downloads in flight before it resolves: no temp file, nothing stored, the store may close', async (t) => {
  const up = await upstream(t);
  const body = tarball(256 * 1024);
  up.files.set('/slow.tar.gz', { body, pauseAt: 64 * 1024 });
  const m = await mirror(t, up);
  const pending = get(`${m.base}/http/${up.origin}/slow.tar.gz`).catch(() => undefined);
  await until('the download under way', () => readdirSync(m.store.layout.tmp).length === 1);
  await m.server.close();
  assert.deepEqual(readdirSync(m.store.layout.tmp), [], 'the temp file was removed');
  assert.equal(m.store.has(sha256(body) as Digest), false, 'nothing stored');
  m.store.close();
  up.release();
  const got = await pending;
  assert.ok(!got || got.broken || got.status !== 200, 'the client saw a broken transfer, not a complete one');
});

test('redirects are followed to another allowed upstream and cached under the URL asked for; each hop is guarded', async (t) => {
  const a = await upstream(t);
  const b = await upstream(t);
  const body = tarball();
  // Like a code host's /archive/ URL answering with a redirect to its download host.
  a.files.set('/org/proj/archive/v1.0.tar.gz', {
    body: Buffer.alloc(0),
    redirect: `http://${b.origin}/codeload/proj-1.0.tar.gz`,
  });
  b.files.set('/codeload/proj-1.0.tar.gz', { body });
  const m = await mirror(t, a, { allow: [a.origin, b.origin] });
  const url = `${m.base}/http/${a.origin}/org/proj/archive/v1.0.tar.gz`;
  const cold = await get(url);
  assert.equal(cold.status, 200, cold.body.toString());
  assert.equal(cold.headers['x-accel-cache'], 'MISS');
  assert.deepEqual(cold.body, body);
  const warm = await get(url);
  assert.equal(warm.headers['x-accel-cache'], 'HIT');
  assert.deepEqual(warm.body, body);
  assert.equal(a.count('/org/proj/archive/v1.0.tar.gz') + b.count('/codeload/proj-1.0.tar.gz'), 2, 'one download');
  // A relative Location and a 301 work the same way.
  a.files.set('/moved.tar.gz', { body: Buffer.alloc(0), redirect: '/org/proj/archive/v1.0.tar.gz', status: 301 });
  assert.deepEqual((await get(`${m.base}/http/${a.origin}/moved.tar.gz`)).body, body);

  // A redirect into an address the mirror may not reach (a loopback upstream nobody allowed) is refused
  // before a request is made there.
  const c = await upstream(t);
  c.files.set('/secret', { body: Buffer.from('internal') });
  a.files.set('/evil.tar.gz', { body: Buffer.alloc(0), redirect: `http://${c.origin}/secret` });
  const evil = await get(`${m.base}/http/${a.origin}/evil.tar.gz`);
  assert.equal(evil.status, 403);
  assert.equal(c.requests.length, 0, 'the forbidden host saw nothing');
  assert.doesNotMatch(evil.body.toString(), /internal/);

  // A loop ends after 5 hops with a 502 naming the URL.
  a.files.set('/loop', { body: Buffer.alloc(0), redirect: '/loop' });
  const loop = await get(`${m.base}/http/${a.origin}/loop`);
  assert.equal(loop.status, 502);
  assert.match(loop.body.toString(), /redirects more than 5 times/);
  assert.equal(a.count('/loop'), 6);
});

test('an upstream 404 is remembered for mirror.negativeTtl seconds, then asked again; a 200 forgets it', async (t) => {
  const up = await upstream(t);
  let now = 1_000_000;
  const m = await mirror(t, up, { negativeTtlSeconds: 60, now: () => now });
  const url = `${m.base}/http/${up.origin}/dists/stable/InRelease`;
  assert.equal((await get(url)).status, 404);
  const replay = await get(url);
  assert.equal(replay.status, 404);
  assert.equal(replay.headers['x-accel-cache'], 'HIT');
  assert.equal(up.count('/dists/stable/InRelease'), 1, 'the second 404 came from memory');
  up.files.set('/dists/stable/InRelease', { body: Buffer.from('now it exists\n') });
  now += 61_000;
  const found = await get(url);
  assert.equal(found.status, 200);
  assert.equal(found.body.toString(), 'now it exists\n');
  assert.equal(up.count('/dists/stable/InRelease'), 2);
  assert.equal(
    m.store.refs.get('url-missing', `http://${up.origin}/dists/stable/InRelease`),
    undefined,
    'the 200 forgot the 404',
  );
});

test('an https:// request is answered from the http:// copy only when that copy is pinned by a digest', async (t) => {
  const up = await upstream(t);
  const pinnedBody = tarball();
  const looseBody = tarball();
  up.files.set('/zlib-1.3.1.tar.gz', { body: pinnedBody });
  up.files.set('/notes.txt', { body: looseBody });
  const home = tempDir(t);
  const online = await mirror(t, up, { home });
  // As `mirror prefetch` of a WORKSPACE does: the http URL with the sha256 the workspace names.
  const pinned = await get(`${online.base}/http/${up.origin}/zlib-1.3.1.tar.gz?sha256=${sha256(pinnedBody)}`);
  assert.equal(pinned.status, 200);
  assert.equal((await get(`${online.base}/http/${up.origin}/notes.txt`)).status, 200);
  await online.close();

  // Offline, Bazel 4 asks for /https/… (its rewriter drops the scheme): the pinned copy answers.
  const offline = await mirror(t, up, { home, offline: true });
  const twin = await get(`${offline.base}/https/${up.origin}/zlib-1.3.1.tar.gz`);
  assert.equal(twin.status, 200);
  assert.equal(twin.headers['x-accel-cache'], 'HIT');
  assert.deepEqual(twin.body, pinnedBody);
  // An unpinned copy never crosses schemes: what came over http is not what https would have served.
  assert.equal((await get(`${offline.base}/https/${up.origin}/notes.txt`)).status, 504);
  // A client pin that disagrees (content the store does not hold) is not answered from the twin either.
  const wrong = await get(`${offline.base}/https/${up.origin}/zlib-1.3.1.tar.gz?sha256=${sha256(tarball())}`);
  assert.equal(wrong.status, 504);
});
