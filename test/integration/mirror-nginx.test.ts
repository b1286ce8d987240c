// nginx (Debian's package) in front of `accel mirror serve`, with the site `accel mirror config nginx` writes:
// immutable hits come from the store through nginx alone; everything else reaches accel.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { type FakeUpstream, startFakeUpstream } from '../fake-upstream.ts';
import { ok, runAccel, sha256, startNginx, tempDir, testNeeding } from '../helpers.ts';
import { serveCli } from '../mirror-harness.ts';

const test = testNeeding('nginx');

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as { port: number };
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

/** nginx with only `site` as its http configuration, everything it writes under `dir`; stopped after the test. */
async function startSite(t: TestContext, dir: string, site: string, port: number): Promise<void> {
  mkdirSync(join(dir, 'temp'), { recursive: true });
  const conf = join(dir, 'nginx.conf');
  const temps = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
    .map((k) => `  ${k}_temp_path ${join(dir, 'temp', k)};`)
    .join('\n');
  writeFileSync(
    conf,
    `daemon off;
worker_processes 1;
user root root;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 128; }
http {
${temps}
  include ${site};
}
`,
  );
  await startNginx(t, dir, conf, () =>
    fetch(`http://127.0.0.1:${port}/_accel/status.json`).then(
      () => true,
      () => false,
    ),
  );
}

/** `accel mirror config nginx` for a mirror at `accel`, nginx listening on `port`, the site written to `site`. */
async function writeSite(home: string, accel: string, port: number, site: string): Promise<string> {
  const args = ['--url', accel, '--listen', `127.0.0.1:${port}`, '--write', site];
  return ok(await runAccel(['--home', home, 'mirror', 'config', 'nginx', ...args]));
}

async function upstream(t: TestContext): Promise<FakeUpstream> {
  const up = await startFakeUpstream();
  t.after(() => up.close());
  return up;
}

async function requestsSeenByAccel(base: string): Promise<number> {
  const status = (await (await fetch(`${base}/_accel/status.json`)).json()) as { requests: number };
  return status.requests;
}

test('nginx in front: immutable hits are served by nginx from the store; misses, queries and volatile files reach accel; gc and tokens hold', async (t) => {
  const dir = tempDir(t);
  const home = join(dir, 'home');
  const up = await upstream(t);
  const big = Buffer.alloc(3 << 20, 7);
  up.files.set('/dist/big-1.0.tar.gz', { body: big });
  up.files.set('/dist/later-2.0.tar.gz', { body: Buffer.from('fetched later\n') });
  up.files.set('/index.json', { body: Buffer.from('{"volatile": true}\n') });
  up.files.set('/debian/pool/main/h/hello/hello_1.0-1_all.deb', { body: Buffer.from('a package\n') });
  mkdirSync(home, { recursive: true });
  writeFileSync(
    join(home, 'config.json'),
    JSON.stringify({ mirror: { remaps: { deb: [`http://${up.origin}/debian`] } } }),
  );
  const mirror = await serveCli(t, home, ['--allow', up.origin]);
  // A blob stored before the front existed is linked when the front is made.
  const first = await fetch(`${mirror.base}/http/${up.origin}/dist/big-1.0.tar.gz`);
  assert.equal(first.status, 200);
  await first.arrayBuffer();

  const port = await freePort();
  const site = join(dir, 'accel.conf');
  const made = await writeSite(home, mirror.base, port, site);
  assert.match(made, /wrote .*accel\.conf/);
  assert.ok(existsSync(join(home, 'front', 'http', up.origin, 'dist', 'big-1.0.tar.gz')), 'linked');
  await startSite(t, join(dir, 'nginx'), site, port);
  const front = `http://127.0.0.1:${port}`;

  // 1. An immutable hit: nginx alone (accel sees no request), the same bytes.
  const before = await requestsSeenByAccel(mirror.base);
  const hit = await fetch(`${front}/http/${up.origin}/dist/big-1.0.tar.gz`);
  assert.equal(hit.status, 200);
  assert.equal(hit.headers.get('x-accel-cache'), null, 'not an answer of accel');
  assert.equal(sha256(Buffer.from(await hit.arrayBuffer())), sha256(big));
  assert.equal(await requestsSeenByAccel(mirror.base), before + 1, 'only the status request reached accel');

  // 2. A miss goes to accel, which fetches, stores and links it: the next request is nginx's.
  const miss = await fetch(`${front}/http/${up.origin}/dist/later-2.0.tar.gz`);
  assert.equal(miss.headers.get('x-accel-cache'), 'MISS');
  assert.equal(await miss.text(), 'fetched later\n');
  const linked = await fetch(`${front}/http/${up.origin}/dist/later-2.0.tar.gz`);
  assert.equal(linked.headers.get('x-accel-cache'), null);
  assert.equal(await linked.text(), 'fetched later\n');

  // A remap's Debian pool file (what apt fetches most) the same way.
  const deb = '/r/deb/pool/main/h/hello/hello_1.0-1_all.deb';
  const debMiss = await fetch(`${front}${deb}`);
  assert.equal(debMiss.headers.get('x-accel-cache'), 'MISS');
  assert.equal(await debMiss.text(), 'a package\n'); // all of it: stored and linked before the last byte
  const debHit = await fetch(`${front}${deb}`);
  assert.equal(debHit.headers.get('x-accel-cache'), null, 'the second is nginx’s');
  assert.equal(await debHit.text(), 'a package\n');

  // 3. Volatile content and anything with a query stay with accel (revalidation, ?sha256= pins).
  const index = await fetch(`${front}/http/${up.origin}/index.json`);
  assert.notEqual(index.headers.get('x-accel-cache'), null, 'answered by accel');
  assert.equal(await index.text(), '{"volatile": true}\n');
  const pinned = await fetch(`${front}/http/${up.origin}/dist/big-1.0.tar.gz?sha256=${sha256(big)}`);
  assert.equal(pinned.headers.get('x-accel-cache'), 'HIT', 'answered by accel');
  assert.equal(pinned.status, 200);
  await pinned.arrayBuffer();
  // Status pages come from accel through the front.
  assert.equal((await fetch(`${front}/_accel/status.json`)).status, 200);

  // 4. With accel stopped, nginx still serves every immutable hit (offline and then some).
  mirror.child.kill('SIGTERM');
  await mirror.exited;
  const alone = await fetch(`${front}/http/${up.origin}/dist/big-1.0.tar.gz`);
  assert.equal(alone.status, 200);
  await alone.arrayBuffer();
  assert.equal((await fetch(`${front}/http/${up.origin}/index.json`)).status, 502, 'volatile needs accel');

  // 5. gc evicts a blob: its link goes too, and the front falls back to accel again.
  ok(await runAccel(['--home', home, 'store', 'gc', '--max-size', '1K']));
  assert.equal(existsSync(join(home, 'front', 'http', up.origin, 'dist', 'big-1.0.tar.gz')), false, 'link swept');
  const again = await serveCli(t, home, ['--allow', up.origin, '--port', '0']);
  const refetched = await fetch(`${again.base}/http/${up.origin}/dist/big-1.0.tar.gz`);
  assert.equal(refetched.headers.get('x-accel-cache'), 'MISS');
  await refetched.arrayBuffer();

  // 6. A mirror token: the site makes nginx ask for it before serving anything, hits included.
  writeFileSync(join(home, 'config.json'), JSON.stringify({ mirror: { token: 's3cret' } }));
  const lockedPort = await freePort();
  const lockedSite = join(dir, 'locked.conf');
  await writeSite(home, again.base, lockedPort, lockedSite);
  await startSite(t, join(dir, 'nginx-locked'), lockedSite, lockedPort);
  const locked = `http://127.0.0.1:${lockedPort}/http/${up.origin}/dist/big-1.0.tar.gz`;
  assert.equal((await fetch(locked)).status, 401);
  const allowed = await fetch(locked, { headers: { authorization: 'Bearer s3cret' } });
  assert.equal(allowed.status, 200);
  assert.equal(allowed.headers.get('x-accel-cache'), null);
  await allowed.arrayBuffer();
});

test('mirror config nginx refuses values that would become more nginx configuration, and changes nothing then', async (t) => {
  const home = join(tempDir(t), 'home');
  for (const listen of ['8080; include /etc/shadow', '127.0.0.1:8080 default_server; location / {', '$remote_addr']) {
    const r = await runAccel(['--home', home, 'mirror', 'config', 'nginx', '--listen', listen]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /\[ACCEL_USAGE_BAD_LISTEN\]/);
  }
  assert.equal(existsSync(join(home, 'front')), false, 'no front tree was made');
  // A token nginx would expand ($) or end (") is refused, never written half-right.
  mkdirSync(home, { recursive: true });
  writeFileSync(join(home, 'config.json'), JSON.stringify({ mirror: { token: 'ab$http_x"c' } }));
  const r = await runAccel(['--home', home, 'mirror', 'config', 'nginx']);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /mirror\.token holds .*\[ACCEL_MIRROR_NGINX_UNSAFE\]/);
  assert.equal(existsSync(join(home, 'front')), false);
});
