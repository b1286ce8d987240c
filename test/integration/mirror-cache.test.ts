import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { buildCacheCounters, CACHE_AC_NS, handleCacheRequest } from '../../src/mirror/cache-routes.ts';
import { cacheToken, cacheTokenPath } from '../../src/mirror/cache-token.ts';
import type { Digest } from '../../src/store/digest.ts';
import { cleanEnv, needsTools, runAccel, runCommand, sha256, tempDir, until } from '../helpers.ts';
import { CACHE_AUTH, startTestMirror } from '../mirror-harness.ts';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

function call(
  method: string,
  url: string,
  options: { body?: Buffer; headers?: Record<string, string>; chunked?: boolean; anonymous?: boolean } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    // A writer holds the cache token unless the test is about not holding it.
    const auth = method === 'PUT' && !options.anonymous ? CACHE_AUTH : {};
    const headers: Record<string, string | number> = { ...auth, ...options.headers };
    if (options.body && !options.chunked) headers['content-length'] = options.body.length;
    const req = request(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

const hex64 = () => randomBytes(32).toString('hex');

test('Bazel layout: a CAS PUT is verified against its digest, then GET and HEAD serve it', async (t) => {
  const m = await startTestMirror(t);
  const blob = randomBytes(100_000);
  const digest = sha256(blob);
  const url = `${m.base}/cache/cas/${digest}`;

  assert.equal((await call('GET', url)).status, 404);
  assert.equal((await call('HEAD', url)).status, 404);

  const wrong = hex64();
  const refused = await call('PUT', `${m.base}/cache/cas/${wrong}`, { body: blob });
  assert.equal(refused.status, 400);
  assert.match(refused.body.toString(), /does not match/);
  assert.equal(m.store.has(wrong as Digest), false);
  assert.equal(m.store.has(digest as Digest), false, 'a refused body is not stored under its real digest either');

  assert.equal((await call('PUT', url, { body: blob })).status, 200);
  assert.equal(m.store.has(digest as Digest), true);
  const got = await call('GET', url);
  assert.equal(got.status, 200);
  assert.deepEqual(got.body, blob);
  const head = await call('HEAD', url);
  assert.equal(head.status, 200);
  assert.equal(head.headers['content-length'], String(blob.length));
  assert.equal(head.body.length, 0);

  // Chunked bodies (no content-length) are accepted too; storing the same blob again is fine.
  assert.equal((await call('PUT', url, { body: blob, chunked: true })).status, 200);
  assert.deepEqual(readdirSync(m.store.layout.tmp), [], 'no temp files left behind');

  const counters = buildCacheCounters(m.server.context.stats);
  assert.equal(counters.cacheHits, 1);
  assert.equal(counters.cacheMisses, 1);
  assert.equal(counters.cachePuts, 2);
  assert.equal(counters.cacheRejectedPuts, 1);
});

test('Bazel layout: an AC entry holds any bytes, GET returns them, PUT replaces them', async (t) => {
  const m = await startTestMirror(t);
  const key = hex64();
  const url = `${m.base}/cache/ac/${key}`;
  assert.equal((await call('GET', url)).status, 404);

  const first = Buffer.from('not an ActionResult: ccache stores its result file here\n');
  assert.equal((await call('PUT', url, { body: first })).status, 200);
  assert.equal(m.store.refs.get(CACHE_AC_NS, key)?.digest, sha256(first));
  assert.deepEqual((await call('GET', url)).body, first);
  assert.equal((await call('HEAD', url)).status, 200);

  const second = randomBytes(3000);
  assert.equal((await call('PUT', url, { body: second })).status, 200);
  const got = await call('GET', url);
  assert.equal(got.status, 200);
  assert.deepEqual(got.body, second);

  const empty = `${m.base}/cache/ac/${hex64()}`;
  assert.equal((await call('PUT', empty, { body: Buffer.alloc(0) })).status, 200);
  const gotEmpty = await call('GET', empty);
  assert.equal(gotEmpty.status, 200);
  assert.equal(gotEmpty.body.length, 0);

  // An entry whose blob was evicted reads as a miss.
  m.store.gc(0);
  assert.equal((await call('GET', url)).status, 404);
});

test('the bearer token guards GET, HEAD and PUT under /cache/', async (t) => {
  const m = await startTestMirror(t, { token: 's3cret' });
  const blob = Buffer.from('guarded');
  const url = `${m.base}/cache/cas/${sha256(blob)}`;
  const auth = { authorization: 'Bearer s3cret' };

  assert.equal((await call('PUT', url, { body: blob, anonymous: true })).status, 401);
  assert.equal((await call('PUT', url, { body: blob, headers: { authorization: 'Bearer nope' } })).status, 401);
  assert.equal(
    (await call('PUT', url, { body: blob, headers: CACHE_AUTH })).status,
    401,
    'the cache token does not open a mirror that has a token of its own',
  );
  assert.equal(m.store.has(sha256(blob) as Digest), false);
  assert.equal((await call('PUT', url, { body: blob, headers: auth })).status, 200);

  assert.equal((await call('GET', url)).status, 401);
  assert.equal((await call('HEAD', url)).status, 401);
  assert.deepEqual((await call('GET', url, { headers: auth })).body, blob);
  assert.equal((await call('HEAD', url, { headers: auth })).status, 200);

  const ac = `${m.base}/cache/ac/${hex64()}`;
  assert.equal((await call('PUT', ac, { body: blob, anonymous: true })).status, 401);
  assert.equal((await call('PUT', ac, { body: blob, headers: auth })).status, 200);
  assert.equal((await call('GET', ac)).status, 401);
  assert.deepEqual((await call('GET', ac, { headers: auth })).body, blob);
});

test('malformed keys are 400, other /cache/ paths 404, other methods 405; PUT stays refused outside /cache/', async (t) => {
  const m = await startTestMirror(t);
  const body = Buffer.from('x');
  assert.equal((await call('GET', `${m.base}/cache/cas/abc`)).status, 400);
  assert.equal((await call('PUT', `${m.base}/cache/ac/${hex64().toUpperCase()}`, { body })).status, 400);
  assert.equal((await call('GET', `${m.base}/cache/ac/${hex64()}0`)).status, 400);
  assert.equal((await call('GET', `${m.base}/cache/ac/../cas/${hex64()}`)).status, 404);
  assert.equal((await call('GET', `${m.base}/cache/other/${hex64()}`)).status, 404);
  assert.equal((await call('GET', `${m.base}/cache/`)).status, 404);
  assert.equal((await call('PUT', `${m.base}/cache/cas/${hex64()}/x`, { body })).status, 404);
  assert.equal((await call('DELETE', `${m.base}/cache/ac/${hex64()}`)).status, 405);
  assert.equal((await call('PUT', `${m.base}/http/example.com/file`, { body })).status, 405);
  assert.equal(m.store.info().blobs, 0);
});

test('bodies over the limit are answered 413 and not stored', async (t) => {
  const m = await startTestMirror(t);
  // Declared too large: refused before a byte of the body is read.
  const declared = await new Promise<string>((resolve, reject) => {
    const socket = connect(m.port, '127.0.0.1');
    let reply = '';
    socket.on('data', (d) => {
      reply += d;
    });
    socket.on('close', () => resolve(reply));
    socket.on('error', reject);
    socket.write(
      `PUT /cache/ac/${hex64()} HTTP/1.1\r\nHost: x\r\nAuthorization: ${CACHE_AUTH.authorization}\r\nContent-Length: ${3 * 1024 ** 3}\r\n\r\nabc`,
    );
  });
  assert.match(declared, /^HTTP\/1\.1 413 /);

  // Too large as it streams (chunked, no length): a server with a small limit over the same store.
  const small = createServer((req, res) => {
    handleCacheRequest(m.server.context, req, res, { maxPutBytes: 1024 }).catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => small.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => small.close(() => resolve())));
  const port = (small.address() as AddressInfo).port;
  const big = randomBytes(4096);
  const over = await call('PUT', `http://127.0.0.1:${port}/cache/cas/${sha256(big)}`, { body: big, chunked: true });
  assert.equal(over.status, 413);
  const fits = randomBytes(1024);
  assert.equal((await call('PUT', `http://127.0.0.1:${port}/cache/cas/${sha256(fits)}`, { body: fits })).status, 200);
  assert.equal(m.store.has(sha256(big) as Digest), false);
  assert.equal(m.store.has(sha256(fits) as Digest), true);
  await until('temp files removed', () => readdirSync(m.store.layout.tmp).length === 0);
});

test('a PUT whose connection breaks mid-body stores nothing and keeps the previous AC entry', async (t) => {
  const m = await startTestMirror(t);
  const key = hex64();
  const url = `${m.base}/cache/ac/${key}`;
  const old = Buffer.from('previous entry');
  assert.equal((await call('PUT', url, { body: old })).status, 200);

  const partial = randomBytes(5000);
  const socket = connect(m.port, '127.0.0.1');
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  socket.write(
    `PUT /cache/ac/${key} HTTP/1.1\r\nHost: x\r\nAuthorization: ${CACHE_AUTH.authorization}\r\nContent-Length: 100000\r\n\r\n`,
  );
  socket.write(partial);
  await until('the server started writing the body', () => readdirSync(m.store.layout.tmp).length === 1);
  socket.destroy();
  await until('the temp file removed', () => readdirSync(m.store.layout.tmp).length === 0);
  await until('the PUT counted as rejected', () => buildCacheCounters(m.server.context.stats).cacheRejectedPuts === 1);

  const got = await call('GET', url);
  assert.equal(got.status, 200);
  assert.deepEqual(got.body, old);
  assert.equal(m.store.info().blobs, 1, 'only the previous entry is stored');
});

test('real ccache: a result stored through accel is a remote hit for a fresh ccache directory', {
  ...needsTools('ccache', 'gcc'),
}, async (t: TestContext) => {
  const m = await startTestMirror(t, { token: 'cc-token' });
  const dir = tempDir(t, 'accel-ccache-');
  writeFileSync(join(dir, 'x.c'), '#include <stdio.h>\nint triple(int a) { printf("%d\\n", a); return a * 3; }\n');
  writeFileSync(join(dir, 'ccache.conf'), '');
  // Nothing from the developer's ccache settings may leak in: CCACHE_* dropped, an empty config file.
  const base = Object.fromEntries(Object.entries(cleanEnv()).filter(([k]) => !k.startsWith('CCACHE_')));
  const env = (cacheDir: string, storage: string) => ({
    ...base,
    CCACHE_CONFIGPATH: join(dir, 'ccache.conf'),
    CCACHE_DIR: join(dir, cacheDir),
    CCACHE_REMOTE_STORAGE: storage,
  });
  const remote = `http://127.0.0.1:${m.port}/cache|layout=bazel|bearer-token=cc-token`;
  const ccache = async (args: string[], e: NodeJS.ProcessEnv) => {
    const r = await runCommand('ccache', args, { cwd: dir, env: { ...e } });
    assert.equal(r.code, 0, `ccache ${args.join(' ')}: ${r.stderr}`);
    return r.stdout.toString();
  };
  const stats = async (e: NodeJS.ProcessEnv) =>
    Object.fromEntries(
      (await ccache(['--print-stats'], e))
        .trim()
        .split('\n')
        .map((line) => line.split('\t'))
        .map(([k, v]) => [k, Number(v)]),
    ) as Record<string, number>;

  // Without the token the mirror says 401: ccache reads that as a miss and counts the PUT as an error.
  const noToken = env('cache0', `http://127.0.0.1:${m.port}/cache|layout=bazel`);
  await ccache(['gcc', '-c', 'x.c', '-o', 'x0.o'], noToken);
  assert.equal((await stats(noToken)).remote_storage_error, 1);
  assert.equal(m.store.refs.count(CACHE_AC_NS), 0);

  const first = env('cache1', remote);
  await ccache(['gcc', '-c', 'x.c', '-o', 'x1.o'], first);
  const s1 = await stats(first);
  assert.equal(s1.cache_miss, 1);
  assert.equal(s1.remote_storage_write, 2, 'result and manifest stored remotely');
  assert.equal(s1.remote_storage_error, 0);
  assert.equal(m.store.refs.count(CACHE_AC_NS), 2);

  const second = env('cache2', remote);
  await ccache(['gcc', '-c', 'x.c', '-o', 'x2.o'], second);
  const s2 = await stats(second);
  assert.equal(s2.remote_storage_hit, 1);
  assert.equal(s2.local_storage_hit, 0);
  assert.equal(s2.cache_miss, 0);
  assert.deepEqual(readFileSync(join(dir, 'x2.o')), readFileSync(join(dir, 'x1.o')));

  const counters = buildCacheCounters(m.server.context.stats);
  assert.equal(counters.cachePuts, 2);
  assert.equal(counters.cacheHits, 2, 'manifest and result read back');
});

test('writes to the build cache need the cache token by default: any local user cannot feed others results', async (t) => {
  const m = await startTestMirror(t);
  const blob = randomBytes(1000);
  const digest = sha256(blob);
  const key = hex64();
  const offers: Record<string, string>[] = [
    {},
    { authorization: 'Bearer wrong' },
    { authorization: `Basic ${CACHE_AUTH.authorization}` },
  ];
  for (const headers of offers) {
    for (const url of [`${m.base}/cache/cas/${digest}`, `${m.base}/cache/ac/${key}`]) {
      const r = await call('PUT', url, { body: blob, headers, anonymous: true });
      assert.equal(r.status, 401, `${url} ${JSON.stringify(headers)}`);
      assert.match(r.body.toString(), /accel mirror config cache/);
    }
  }
  assert.equal((await call('GET', `${m.base}/cache/cas/${digest}`)).status, 404, 'nothing was stored');
  assert.equal(m.store.refs.count(CACHE_AC_NS), 0);
  assert.equal((await call('PUT', `${m.base}/cache/ac/${key}`, { body: blob })).status, 200);
  assert.deepEqual((await call('GET', `${m.base}/cache/ac/${key}`)).body, blob, 'reads stay open');
});

test('`accel mirror config cache` prints the write token that `mirror serve` makes at first start, kept 0600', async (t) => {
  const home = tempDir(t);
  const printed = await runAccel(['--home', home, 'mirror', 'config', 'cache']);
  assert.equal(printed.code, 0, printed.stderr);
  const token = /ACCEL_CC_REMOTE_TOKEN=(\S+)/.exec(printed.stdout.toString())?.[1] as string;
  assert.ok(token && token.length >= 32, printed.stdout.toString());
  assert.match(printed.stdout.toString(), new RegExp(`bearer-token=${token}`));
  assert.equal(statSync(cacheTokenPath(home)).mode & 0o777, 0o600);
  assert.equal(cacheToken(home), token, 'the same token every time');
  const m = await startTestMirror(t, { home, cacheToken: cacheToken(home) });
  const blob = randomBytes(100);
  const url = `${m.base}/cache/cas/${sha256(blob)}`;
  assert.equal((await call('PUT', url, { body: blob, headers: { authorization: `Bearer ${token}` } })).status, 200);
});
