import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { test } from 'node:test';
import { addToChannel } from '../../src/conda/pkg/channel-index.ts';
import { writeCondaPackage } from '../../src/conda/pkg/write.ts';
import { fillPrefix, paddedPrefix } from '../condapkg-fixture.ts';
import { tempDir } from '../helpers.ts';
import { serveCli, startTestMirror } from '../mirror-harness.ts';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** A raw request: the path goes to the server exactly as written (no URL normalisation). */
function call(port: number, path: string, options: { method?: string; headers?: Record<string, string> } = {}) {
  return new Promise<Reply>((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, method: options.method ?? 'GET', headers: options.headers, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function channelWithPackage(root: string) {
  const prefix = paddedPrefix(join(root, 'build'));
  const files = fillPrefix(prefix, [{ path: 'share/libfoo.txt', data: 'hello\n'.repeat(1000) }]);
  const out = await writeCondaPackage({
    prefix,
    files,
    placeholder: prefix,
    outDir: join(root, 'out'),
    index: { name: 'libfoo', version: '1.0', build: '0', build_number: 0, subdir: 'linux-aarch64', timestamp: 0 },
  });
  const channel = join(root, 'channel');
  await addToChannel(channel, out.path);
  return channel;
}

test('serves a channel: repodata revalidated often, packages immutable, HEAD, Range and 304', async (t) => {
  const root = tempDir(t);
  const channel = await channelWithPackage(root);
  const m = await startTestMirror(t, { condaChannels: { local: channel } });
  const repodata = await call(m.port, '/conda/local/linux-aarch64/repodata.json');
  assert.equal(repodata.status, 200);
  assert.equal(repodata.headers['content-type'], 'application/json');
  assert.equal(repodata.headers['cache-control'], 'public, max-age=30');
  assert.deepEqual(repodata.body, readFileSync(join(channel, 'linux-aarch64', 'repodata.json')));
  assert.equal((await call(m.port, '/conda/local/noarch/repodata.json')).status, 200);

  const pkgPath = '/conda/local/linux-aarch64/libfoo-1.0-0.conda';
  const bytes = readFileSync(join(channel, 'linux-aarch64', 'libfoo-1.0-0.conda'));
  const pkg = await call(m.port, pkgPath);
  assert.equal(pkg.status, 200);
  assert.deepEqual(pkg.body, bytes);
  assert.equal(pkg.headers['cache-control'], 'public, max-age=31536000, immutable');
  const head = await call(m.port, pkgPath, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.headers['content-length'], String(bytes.length));
  assert.equal(head.body.length, 0);
  const range = await call(m.port, pkgPath, { headers: { range: 'bytes=10-19' } });
  assert.equal(range.status, 206);
  assert.equal(range.headers['content-range'], `bytes 10-19/${bytes.length}`);
  assert.deepEqual(range.body, bytes.subarray(10, 20));
  const tail = await call(m.port, pkgPath, { headers: { range: 'bytes=-22' } });
  assert.deepEqual(tail.body, bytes.subarray(bytes.length - 22), 'the zip end record, as a range reader asks for it');
  assert.equal((await call(m.port, pkgPath, { headers: { range: `bytes=${bytes.length}-` } })).status, 416);
  const etag = String(pkg.headers.etag);
  assert.equal((await call(m.port, pkgPath, { headers: { 'if-none-match': etag } })).status, 304);
  assert.equal((await call(m.port, '/conda/local/linux-aarch64/repodata.json.zst')).status, 404);
  assert.equal((await call(m.port, '/conda/local/linux-aarch64/repodata.json?x=1')).status, 200);
  const status = JSON.parse((await call(m.port, '/_accel/status.json')).body.toString());
  assert.deepEqual(status.condaChannels, [{ name: 'local', path: '/conda/local', dir: channel }]);
});

test('only files inside the channel directory: traversal, hidden files and escaping links are refused', async (t) => {
  const root = tempDir(t);
  const channel = await channelWithPackage(root);
  writeFileSync(join(root, 'secret.txt'), 'secret\n');
  writeFileSync(join(channel, 'noarch', '.repodata.json.1234-abcdef012345'), 'partial');
  symlinkSync(join(root, 'secret.txt'), join(channel, 'noarch', 'escape.json'));
  mkdirSync(join(channel, 'noarch', 'sub'));
  const m = await startTestMirror(t, { condaChannels: { local: channel } });
  const refused: [string, number][] = [
    ['/conda/local/../secret.txt', 400],
    ['/conda/local/noarch/../../secret.txt', 400],
    ['/conda/local/%2e%2e/secret.txt', 400],
    ['/conda/local/..%2fsecret.txt', 400],
    ['/conda/local/noarch%2f..%2f..%2fsecret.txt', 400],
    ['/conda/local/%2fetc%2fpasswd', 400],
    ['/conda/local//etc/passwd', 400],
    ['/conda/local/noarch/%00', 400],
    ['/conda/local/noarch/%zz', 400],
    ['/conda/local/noarch/.repodata.json.1234-abcdef012345', 400],
    ['/conda/local/noarch/escape.json', 404],
    ['/conda/local/noarch/sub', 404],
    ['/conda/local/noarch/missing.conda', 404],
    ['/conda/local', 404],
    ['/conda/other/noarch/repodata.json', 404],
  ];
  for (const [path, status] of refused) {
    const reply = await call(m.port, path);
    assert.equal(reply.status, status, `${path}: ${reply.body}`);
    assert.doesNotMatch(reply.body.toString(), /secret|partial/, path);
  }
  assert.equal((await call(m.port, '/conda/local/noarch/repodata.json', { method: 'PUT' })).status, 405);
  assert.equal((await call(m.port, '/conda/local/noarch/repodata.json', { method: 'DELETE' })).status, 405);
});

test('the bearer token guards conda channels like every other route', async (t) => {
  const root = tempDir(t);
  const channel = await channelWithPackage(root);
  const m = await startTestMirror(t, { condaChannels: { local: channel }, token: 's3cret' });
  const path = '/conda/local/noarch/repodata.json';
  assert.equal((await call(m.port, path)).status, 401);
  assert.equal((await call(m.port, path, { headers: { authorization: 'Bearer s3cret' } })).status, 200);
});

test('accel mirror serve warns about a configured channel that has no index yet', async (t) => {
  const root = tempDir(t);
  const channel = await channelWithPackage(root);
  const home = join(root, 'home');
  mkdirSync(home);
  const missing = join(root, 'not-yet');
  writeFileSync(
    join(home, 'config.json'),
    JSON.stringify({ mirror: { condaChannels: { local: channel, later: missing } } }),
  );
  const mirror = await serveCli(t, home);
  assert.match(mirror.stderr(), new RegExp(`conda channel 'later': ${missing} has no noarch/repodata.json`));
  assert.doesNotMatch(mirror.stderr(), /conda channel 'local'/);
  const res = await fetch(`${mirror.base}/conda/local/linux-aarch64/libfoo-1.0-0.conda`);
  assert.equal(res.status, 200);
  await res.arrayBuffer();
});
